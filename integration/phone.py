"""Phone numbers: parse any reasonable input, give E.164, the operator's formats and match keys.

Two entry points with different strictness:

- ``parse_phone`` is for numbers *reported* to us (call history, CRM records): it returns E.164
  whenever the digits parse at all, valid or not, keeps the raw form, and recognises short
  internal numbers. Reporting never drops what the operator said.
- ``parse_dialable`` is for numbers we are about to *dial*: the number must be valid, and it
  yields the operator's ``PhoneTo`` format.

``contract_number`` checks our own numbers (the operator's ``PhoneFrom``: 10 digits, no 8).
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers.phonenumberutil import _number_type_helper  # number_type() minus the parse

from integration.errors import InvalidPhoneNumber

# Characters people and systems put around digits: spaces (incl. no-break), brackets, dashes, dots.
_DECORATION = re.compile(r"[\s\u00a0()\-./\u2010-\u2015\u2212]")
_ALLOWED = re.compile(r"^\+?[0-9]+$")


@functools.cache
def _to_ascii_digits() -> dict[int, str]:
    """Every decimal digit of every script (Arabic-Indic ٩, Devanagari ९, …) → its ASCII digit."""
    return {
        code: str(unicodedata.decimal(chr(code)))
        for code in range(128, sys.maxunicode + 1)
        if unicodedata.category(chr(code)) == "Nd"
    }


INTERNAL_MAX_DIGITS = 6  # extensions and short service numbers
MATCH_KEY_DIGITS = 10


class NumberType(StrEnum):
    MOBILE = "mobile"
    FIXED_LINE = "fixed_line"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL = "personal"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    INTERNAL = "internal"
    UNKNOWN = "unknown"


_TYPES = {
    PhoneNumberType.MOBILE: NumberType.MOBILE,
    PhoneNumberType.FIXED_LINE: NumberType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE: NumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE: NumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST: NumberType.SHARED_COST,
    PhoneNumberType.VOIP: NumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER: NumberType.PERSONAL,
    PhoneNumberType.PAGER: NumberType.PAGER,
    PhoneNumberType.UAN: NumberType.UAN,
    PhoneNumberType.VOICEMAIL: NumberType.VOICEMAIL,
}

RUSSIA_COUNTRY_CODE = 7  # shared with Kazakhstan; both are dialled with the trunk prefix 8
# Abkhazia's numbers are in zone +7 (840 fixed, 940 mobile) and parse as Russian, but calls there
# are charged at international rates.
ABKHAZIA_PREFIXES = ("+7840", "+7940")


@dataclass(slots=True)  # built for every call: not frozen (see models)
class Phone:
    """A parsed number. ``e164`` is None only for short internal numbers."""

    raw: str
    e164: str | None
    valid: bool
    type: NumberType
    region: str | None = None
    country_code: int | None = None

    @property
    def internal(self) -> bool:
        return self.type is NumberType.INTERNAL

    @property
    def digits(self) -> str:
        """The digits of E.164 without '+', or the internal number itself."""
        return self.e164[1:] if self.e164 else _DECORATION.sub("", ascii_digits(self.raw))

    @property
    def match_key(self) -> str | None:
        """Last 10 digits: matches a CRM record whatever prefix it was written with.

        Internal numbers have no match key: they must never be matched to a contact.
        """
        if self.type is NumberType.INTERNAL:
            return None
        return (self.e164[1:] if self.e164 else self.digits)[-MATCH_KEY_DIGITS:]  # read once per match

    @property
    def phone_to(self) -> str:
        """The operator's ``PhoneTo``: ``8XXXXXXXXXX`` in zone +7, else ``810`` + international."""
        if self.e164 is None:
            raise InvalidPhoneNumber(self.raw, "an internal number cannot be dialled through the operator")
        if self.country_code == RUSSIA_COUNTRY_CODE:
            return "8" + self.digits[1:]
        return "810" + self.digits

    @property
    def tariff_region(self) -> str | None:
        """The region a call is charged as: ``region``, except Abkhazia's +7 numbers (``AB``)."""
        if self.e164 is not None and self.e164.startswith(ABKHAZIA_PREFIXES):
            return "AB"
        return self.region

    def is_international(self, home_country_code: int = RUSSIA_COUNTRY_CODE) -> bool:
        return self.e164 is not None and self.country_code != home_country_code


def ascii_digits(text: str) -> str:
    """``text`` with fullwidth forms folded (NFKC) and every script's digits written in ASCII,
    so that all spellings of one number are one number (and one rate-limit key)."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_to_ascii_digits())


_FORWARDING_SEPARATORS = re.compile(r"[\s()\-]")


def forwarding_digits(raw: object) -> str | None:
    """The 10 digits of a forwarding number written as the operator allows (``9001234567``,
    ``89001234567``, ``+79001234567``; spaces, brackets and dashes ignored), else None."""
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        return None
    text = _FORWARDING_SEPARATORS.sub("", ascii_digits(str(raw)))
    if re.fullmatch(r"[0-9]{10}", text):
        return text
    if re.fullmatch(r"8[0-9]{10}", text) or re.fullmatch(r"\+7[0-9]{10}", text):
        return text[-10:]
    return None


def _clean(raw: object) -> str:
    if raw is None:
        raise InvalidPhoneNumber(raw, "no number given")
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise InvalidPhoneNumber(raw, "a phone number must be text")
    compact = _DECORATION.sub("", ascii_digits(raw).strip())
    if not compact.lstrip("+"):
        raise InvalidPhoneNumber(raw, "no digits given")
    if "+" in compact[1:]:
        raise InvalidPhoneNumber(raw, "'+' may only stand at the start")
    if not _ALLOWED.match(compact):
        if any(ch.isalpha() for ch in compact):
            raise InvalidPhoneNumber(raw, "contains letters")
        raise InvalidPhoneNumber(raw, "contains characters that are not part of a phone number")
    return compact


# Russian numbers as the operator writes them: 8…, 7…, +7… or 10 digits, area codes 3xx/4xx/8xx/9xx
# (not 810: that is the international prefix, which phonenumbers reads as such).
_RUSSIAN = re.compile(r"^(?:\+7|7|8)?((?!810)[3489][0-9]{9})$")
_RU_METADATA: phonenumbers.PhoneMetadata = phonenumbers.PhoneMetadata.metadata_for_region("RU")  # type: ignore[assignment]  # shipped with phonenumbers


def parse_phone(raw: object, region: str = "RU", *, classify: bool = True) -> Phone:
    """Parse a reported number leniently: E.164 whenever the digits parse, valid or not.

    ``classify=False`` skips working out the type and validity (the costly part) when only the
    E.164 form is needed; ``type`` is then ``UNKNOWN`` and ``valid`` False.
    """
    if region == "RU" and type(raw) is str and (russian := _RUSSIAN.fullmatch(raw)):
        return _russian(raw, russian.group(1), classify)  # already clean: what _clean would give
    compact = _clean(raw)
    text = str(raw).strip()
    if not compact.startswith("+") and len(compact) <= INTERNAL_MAX_DIGITS:
        return Phone(raw=text, e164=None, valid=False, type=NumberType.INTERNAL)
    if len(compact.lstrip("+")) > 17:
        raise InvalidPhoneNumber(raw, "too many digits for a phone number")
    if region == "RU" and (russian := _RUSSIAN.match(compact)):
        return _russian(text, russian.group(1), classify)
    if not classify and (international := _plain_international(compact, region)):
        e164, country_code = international
        return Phone(raw=text, e164=e164, valid=False, type=NumberType.UNKNOWN, country_code=country_code)
    try:
        number = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(raw, _parse_reason(exc)) from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not classify:
        return Phone(raw=text, e164=e164, valid=False, type=NumberType.UNKNOWN, country_code=number.country_code)
    # number_type() is UNKNOWN exactly when the number is not valid: one look-up answers both.
    kind = _TYPES.get(phonenumbers.number_type(number), NumberType.UNKNOWN)
    return Phone(
        raw=text,
        e164=e164,
        valid=kind is not NumberType.UNKNOWN,
        type=kind,
        region=phonenumbers.region_code_for_number(number),
        country_code=number.country_code,
    )


def _russian(text: str, national: str, classify: bool) -> Phone:
    """What phonenumbers gives for a Russian number, without parsing it (most numbers are these).

    Area codes 3xx/4xx/8xx/9xx belong to Russia alone (Kazakhstan's +7 numbers start with 6 or 7),
    so the type comes straight from Russia's metadata.
    """
    if not classify:
        return Phone(raw=text, e164="+7" + national, valid=False, type=NumberType.UNKNOWN, country_code=7)
    kind = _TYPES.get(_number_type_helper(national, _RU_METADATA), NumberType.UNKNOWN)
    return Phone(
        raw=text, e164="+7" + national, valid=kind is not NumberType.UNKNOWN, type=kind, region="RU", country_code=7
    )


def _plain_international(compact: str, region: str) -> tuple[str, int] | None:
    """E.164 and country code of a number written internationally (``+…``, or ``810…`` in Russia)
    when phonenumbers would keep its digits as they are: a known country code, a national part of
    2–17 digits and nothing its country's national-prefix rule could strip. Else None: ask
    phonenumbers (a property test holds the two equal). It costs a fiftieth of parsing."""
    if compact.startswith("+"):
        digits = compact[1:]
    elif region == "RU" and compact.startswith("810"):
        digits = compact[3:]
    else:
        return None
    if not digits or digits[0] == "0":
        return None
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    metadata = _metadata_for(country_code)
    if metadata is None or not 2 <= len(national) <= 17:
        return None
    strip = metadata.national_prefix_for_parsing
    if strip and re.match(strip, national):
        return None
    return "+" + digits, country_code


@functools.cache
def _metadata_for(country_code: int) -> phonenumbers.PhoneMetadata | None:
    region = phonenumbers.region_code_for_country_code(country_code)
    return phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)


def reported_number(raw: str, region: str = "RU") -> tuple[str | None, bool]:
    """What the ledger keeps of a number the operator reported: its E.164 form (None when it does
    not parse) and whether it is a short internal number. ``parse_phone(raw, region,
    classify=False)`` without building a ``Phone`` for the two usual kinds (a test holds them equal)."""
    if region == "RU" and (russian := _RUSSIAN.fullmatch(raw)):
        return "+7" + russian.group(1), False
    if len(raw) <= INTERNAL_MAX_DIGITS and raw.isascii() and raw.isdigit():
        return None, True
    try:
        phone = parse_phone(raw, region, classify=False)
    except InvalidPhoneNumber:
        return None, False
    return phone.e164, phone.internal


def phone_from_e164(e164: str) -> Phone:
    """A ``Phone`` for a number already in E.164 (from the ledger), without parsing it again."""
    if e164.startswith("+7"):  # most numbers here: no need to look the country code up
        return Phone(e164, e164, False, NumberType.UNKNOWN, None, RUSSIA_COUNTRY_CODE)  # positional: cheaper
    digits = e164.lstrip("+")
    country = next(
        (int(digits[:n]) for n in (1, 2, 3) if int(digits[:n] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE), None
    )
    return Phone(raw=e164, e164=e164, valid=False, type=NumberType.UNKNOWN, country_code=country)


def parse_dialable(raw: object, region: str = "RU") -> Phone:
    """Parse a number we are about to dial: it must be a valid, external number."""
    phone = parse_phone(raw, region)
    if phone.internal or phone.e164 is None:
        raise InvalidPhoneNumber(raw, "a short internal number cannot be dialled through the operator")
    if not phone.valid:
        number = phonenumbers.parse(phone.e164)
        reason = {
            phonenumbers.ValidationResult.TOO_SHORT: "too few digits",
            phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too few digits (a local number needs its area code)",
            phonenumbers.ValidationResult.TOO_LONG: "too many digits",
            phonenumbers.ValidationResult.INVALID_LENGTH: "wrong number of digits for its numbering plan",
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
        }.get(phonenumbers.is_possible_number_with_reason(number), "not a number in use in its numbering plan")
        raise InvalidPhoneNumber(raw, reason)
    return phone


def contract_number(raw: object, region: str = "RU") -> str:
    """A number on the contract in the operator's ``PhoneFrom`` form: 10 digits, no 8."""
    if isinstance(raw, str) and len(raw) == 10 and raw.isascii() and raw.isdigit():
        return raw  # already in that form (the common case)
    phone = parse_phone(raw, region)
    if phone.internal or phone.country_code != RUSSIA_COUNTRY_CODE or len(phone.digits) != 11:
        raise InvalidPhoneNumber(raw, "a contract number is a 10-digit number in zone +7 (e.g. 4990000000)")
    return phone.digits[1:]


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too few digits after the international prefix",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too few digits",
        phonenumbers.NumberParseException.TOO_LONG: "too many digits",
    }.get(exc.error_type, "not a phone number")
