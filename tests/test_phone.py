"""A table of phone inputs: every extNum format of the reference, foreign, premium, garbage."""

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from integration.errors import InvalidPhoneNumber
from integration.phone import _TYPES, NumberType, contract_number, parse_dialable, parse_phone, reported_number

# raw input → (E.164, PhoneTo, type, valid)
REPORTED = [
    ("89161234567", "+79161234567", "89161234567", NumberType.MOBILE, True),
    ("79161234567", "+79161234567", "89161234567", NumberType.MOBILE, True),
    ("+79161234567", "+79161234567", "89161234567", NumberType.MOBILE, True),
    ("9161234567", "+79161234567", "89161234567", NumberType.MOBILE, True),
    ("8 (916) 123-45-67", "+79161234567", "89161234567", NumberType.MOBILE, True),
    ("+7 916 123 45 67", "+79161234567", "89161234567", NumberType.MOBILE, True),
    ("8-916-123-45-67", "+79161234567", "89161234567", NumberType.MOBILE, True),
    ("8.916.123.45.67", "+79161234567", "89161234567", NumberType.MOBILE, True),
    ("+7\u00a0916\u00a0123\u00a045\u00a067", "+79161234567", "89161234567", NumberType.MOBILE, True),
    ("  +7(916)1234567 ", "+79161234567", "89161234567", NumberType.MOBILE, True),
    ("84951234567", "+74951234567", "84951234567", NumberType.FIXED_LINE, True),
    ("74951234567", "+74951234567", "84951234567", NumberType.FIXED_LINE, True),
    ("4951234567", "+74951234567", "84951234567", NumberType.FIXED_LINE, True),
    ("+7 (495) 123-45-67", "+74951234567", "84951234567", NumberType.FIXED_LINE, True),
    ("88121234567", "+78121234567", "88121234567", NumberType.FIXED_LINE, True),
    ("88005553535", "+78005553535", "88005553535", NumberType.TOLL_FREE, True),
    ("+7 800 555 35 35", "+78005553535", "88005553535", NumberType.TOLL_FREE, True),
    ("88095553535", "+78095553535", "88095553535", NumberType.PREMIUM_RATE, True),
    ("+78095551234", "+78095551234", "88095551234", NumberType.PREMIUM_RATE, True),
    ("81049301234567", "+49301234567", "81049301234567", NumberType.FIXED_LINE, True),
    ("810 49 30 1234567", "+49301234567", "81049301234567", NumberType.FIXED_LINE, True),
    ("+49 30 1234567", "+49301234567", "81049301234567", NumberType.FIXED_LINE, True),
    ("+380 44 123 4567", "+380441234567", "810380441234567", NumberType.FIXED_LINE, True),
    ("810380441234567", "+380441234567", "810380441234567", NumberType.FIXED_LINE, True),
    ("+1 650 253 0000", "+16502530000", "81016502530000", NumberType.FIXED_LINE_OR_MOBILE, True),
    ("+44 20 7946 0958", "+442079460958", "810442079460958", NumberType.FIXED_LINE, True),
    ("+77011234567", "+77011234567", "87011234567", NumberType.MOBILE, True),  # Kazakhstan shares +7
    ("87011234567", "+77011234567", "87011234567", NumberType.MOBILE, True),
    ("+39 06 1234 5678", "+390612345678", "810390612345678", NumberType.FIXED_LINE, True),  # Italian leading 0
    # parse, but are not valid numbers: reported as E.164 anyway, never dialled
    ("8916123456", "+78916123456", None, NumberType.UNKNOWN, False),
    ("1234567890", "+71234567890", None, NumberType.UNKNOWN, False),
    ("0000000000", "+70000000000", None, NumberType.UNKNOWN, False),
]

INTERNAL = ["101", "1234", "55", "123456", "0"]

GARBAGE = [
    ("", "no digits given"),
    ("   ", "no digits given"),
    ("abc", "contains letters"),
    ("8916CALLME", "contains letters"),
    ("+7 916 123 45 67 ext", "contains letters"),
    ("#123", "contains characters"),
    ("+7+9161234567", "'+' may only stand at the start"),
    ("+", "no digits given"),
    ("+999 123 456", "unknown country code"),
    ("1" * 25, "too many digits"),
    (None, "no number given"),
    (3.5, "must be text"),
]

NOT_DIALABLE = [
    ("8916123456", "not a number in use"),
    ("8 (916) 123", "too few digits"),
    ("101", "internal"),
    ("1234567890", "not a number in use"),
]


@pytest.mark.parametrize(("raw", "e164", "phone_to", "kind", "valid"), REPORTED)
def test_reported_numbers(raw, e164, phone_to, kind, valid):
    phone = parse_phone(raw)
    assert phone.e164 == e164
    assert phone.type is kind
    assert phone.valid is valid
    assert phone.raw == raw.strip()
    assert phone.match_key == e164[1:][-10:]
    if valid:
        assert parse_dialable(raw).phone_to == phone_to


@pytest.mark.parametrize("raw", INTERNAL)
def test_short_internal_numbers_are_never_matched_or_dialled(raw):
    phone = parse_phone(raw)
    assert phone.internal and phone.e164 is None and phone.match_key is None
    with pytest.raises(InvalidPhoneNumber, match="internal"):
        parse_dialable(raw)


@pytest.mark.parametrize(("raw", "reason"), GARBAGE)
def test_garbage_is_refused_with_a_reason(raw, reason):
    with pytest.raises(InvalidPhoneNumber) as caught:
        parse_phone(raw)
    assert reason in caught.value.reason


@pytest.mark.parametrize(("raw", "reason"), NOT_DIALABLE)
def test_numbers_we_would_not_dial(raw, reason):
    with pytest.raises(InvalidPhoneNumber) as caught:
        parse_dialable(raw)
    assert reason in caught.value.reason


def test_integer_input_is_accepted():
    assert parse_phone(9161234567).e164 == "+79161234567"


def test_match_key_ignores_prefix_differences():
    keys = {parse_phone(raw).match_key for raw in ("89161234567", "+7 916 123-45-67", "9161234567", "79161234567")}
    assert keys == {"9161234567"}


def test_international_flag():
    assert parse_phone("+49301234567").is_international()
    assert not parse_phone("89161234567").is_international()


def test_default_region_applies_to_numbers_without_country_code():
    assert parse_phone("030 1234567", region="DE").e164 == "+49301234567"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("4990000000", "4990000000"), ("84990000000", "4990000000"), ("+7 499 000-00-00", "4990000000")],
)
def test_contract_numbers_are_ten_digits(raw, expected):
    assert contract_number(raw) == expected


@pytest.mark.parametrize("raw", ["101", "+49301234567", "499000000"])
def test_bad_contract_numbers(raw):
    with pytest.raises(InvalidPhoneNumber):
        contract_number(raw)


def test_table_is_large_enough():
    assert len(REPORTED) + len(INTERNAL) + len(GARBAGE) + len(NOT_DIALABLE) >= 40


@pytest.mark.parametrize(
    "raw", [r[0] for r in REPORTED] + ["8916123456", "74951234567", "3432123456", "+7 343 212-34-56"]
)
def test_the_fast_reporting_path_agrees_with_phonenumbers(raw):
    fast, full = parse_phone(raw, classify=False), parse_phone(raw)
    assert (fast.e164, fast.country_code, fast.match_key) == (full.e164, full.country_code, full.match_key)


def _reference(compact: str) -> tuple:
    """What phonenumbers itself says, parsed the long way."""
    number = phonenumbers.parse(compact, "RU")
    kind = phonenumbers.number_type(number)
    return (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        phonenumbers.is_valid_number(number),
        kind,
        phonenumbers.region_code_for_number(number),
        number.country_code,
    )


@settings(max_examples=500, deadline=None)
@given(prefix=st.sampled_from(["", "8", "7", "+7"]), national=st.from_regex(r"\A[3489][0-9]{9}\Z"))
def test_the_russian_fast_path_classifies_like_phonenumbers(prefix, national):
    phone = parse_phone(prefix + national)
    assert (phone.e164, phone.valid, _NUMBER_TYPES[phone.type], phone.region, phone.country_code) == _reference(
        prefix + national
    )


_NUMBER_TYPES = {ours: theirs for theirs, ours in _TYPES.items()} | {NumberType.UNKNOWN: PhoneNumberType.UNKNOWN}


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.from_regex(r"(\+7|7|8)?[3489][0-9]{9}", fullmatch=True),
        st.from_regex(r"[+0-9]{1,16}", fullmatch=True),
        st.text(alphabet="+0123456789 -()\n", max_size=16),
    ),
    st.booleans(),
)
def test_a_clean_russian_number_parses_as_it_does_through_the_full_path(raw, classify):
    """The fast path for clean strings gives what the full path gives (a leading space forces it)."""
    try:
        fast = parse_phone(raw, "RU", classify=classify)
    except InvalidPhoneNumber:
        with pytest.raises(InvalidPhoneNumber):
            parse_phone(" " + raw, "RU", classify=classify)
        return
    assert parse_phone(" " + raw, "RU", classify=classify) == fast


def _reported_the_long_way(raw: str) -> tuple:
    try:
        phone = parse_phone(raw, classify=False)
    except InvalidPhoneNumber:
        return None, False
    return phone.e164, phone.internal


@pytest.mark.parametrize(
    "raw",
    [r[0] for r in REPORTED]
    + INTERNAL
    + [r[0] for r in GARBAGE if isinstance(r[0], str)]
    + ["", "٣٣٣", "12 34", "8102110000"],
)
def test_reported_numbers_are_kept_as_parse_phone_reads_them(raw):
    assert reported_number(raw) == _reported_the_long_way(raw)


@settings(max_examples=500, deadline=None)
@given(raw=st.from_regex(r"\A\+?[0-9 ()\-]{0,16}\Z") | st.text(max_size=12))
def test_reported_numbers_agree_with_parse_phone_on_any_text(raw):
    assert reported_number(raw) == _reported_the_long_way(raw)


@settings(max_examples=500, deadline=None)
@given(
    prefix=st.sampled_from(["+", "810"]),
    code=st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)) | st.integers(0, 999),
    national=st.from_regex(r"\A[0-9]{0,16}\Z"),
)
def test_international_numbers_keep_the_digits_only_as_phonenumbers_does(prefix, code, national):
    raw = f"{prefix}{code}{national}"
    try:
        fast = parse_phone(raw, classify=False)
    except InvalidPhoneNumber:
        fast = None
    try:
        number = phonenumbers.parse(raw, "RU")
        expected = (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), number.country_code)
    except phonenumbers.NumberParseException:
        expected = None
    if (fast is not None and fast.internal) or len(raw.lstrip("+")) > 17:
        return  # parse_phone's own rules, before phonenumbers is asked
    assert (None if fast is None else (fast.e164, fast.country_code)) == expected
