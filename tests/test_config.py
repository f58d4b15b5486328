import pytest

from integration.errors import ConfigError
from integration.settings import load_document, load_settings, setting_names
from tests.conftest import ROOT, SECRET_KEYS

REQUIRED = {
    "OPERATOR_AUTHORIZATION_TOKEN": "secret-token-value",
    "OPERATOR_NUMBERS": "4990000000, 4950000000",
    "SECRET_KEYS": SECRET_KEYS,
}


def load(env, tmp_path=None):
    return load_settings(env, dotenv=(tmp_path / ".env") if tmp_path else "/nonexistent/.env")


def test_defaults_and_required_values():
    settings = load(REQUIRED)
    assert settings.operator_numbers == ("4990000000", "4950000000")
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.operator_api_url == "https://webapi.alloincognito.ru:4431"
    assert settings.operator_timezone == "Europe/Moscow"
    assert settings.default_region == "RU"


def test_every_problem_is_reported_on_its_own_line():
    with pytest.raises(ConfigError) as caught:
        load(
            {
                "OPERATOR_NUMBERS": "499000000, 84990000000",
                "OPERATOR_TIMEZONE": "Mars/Base",
                "REDIS_URL": "http://x",
                "OPERATOR_READ_TIMEOUT": "soon",
                "DEFAULT_REGION": "XX",
                "OPERATOR_MAX_RETRIES": "-1",
            }
        )
    problems = caught.value.problems
    assert problems[0] == "OPERATOR_AUTHORIZATION_TOKEN is required but not set"
    assert any(p.startswith("OPERATOR_NUMBERS must be 10 digits") or "499000000" in p for p in problems)
    assert any(p.startswith("OPERATOR_TIMEZONE") for p in problems)
    assert any(p.startswith("REDIS_URL") for p in problems)
    assert any(p.startswith("OPERATOR_READ_TIMEOUT") for p in problems)
    assert any(p.startswith("DEFAULT_REGION") for p in problems)
    assert any(p.startswith("OPERATOR_MAX_RETRIES") for p in problems)
    assert "SECRET_KEYS is required but not set" in problems
    assert len(problems) == 8


def test_secret_values_never_appear_in_errors_or_repr():
    secret = "eyJ-very-secret"
    settings = load(REQUIRED | {"OPERATOR_AUTHORIZATION_TOKEN": secret})
    assert secret not in repr(settings)
    with pytest.raises(ConfigError) as caught:
        load({"OPERATOR_AUTHORIZATION_TOKEN": secret, "OPERATOR_NUMBERS": secret})
    assert secret not in str(caught.value) or "OPERATOR_NUMBERS" in str(caught.value)


def test_dotenv_file_is_read_and_environment_wins(tmp_path):
    (tmp_path / ".env").write_text(
        "OPERATOR_AUTHORIZATION_TOKEN=from-file\nOPERATOR_NUMBERS=4990000000\nDEFAULT_REGION=KZ\n"
    )
    settings = load({"DEFAULT_REGION": "RU", "SECRET_KEYS": SECRET_KEYS}, tmp_path)
    assert settings.operator_authorization_token == "from-file"
    assert settings.default_region == "RU"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CRM_BACKEND": "bitrix24"}, "BITRIX24_WEBHOOK_URL is required when CRM_BACKEND is bitrix24"),
        ({"CRM_BACKEND": "amocrm"}, "AMOCRM_BASE_URL is required when CRM_BACKEND is amocrm"),
        (
            {"CRM_BACKEND": "amocrm", "AMOCRM_BASE_URL": "https://acme.amocrm.ru", "AMOCRM_CLIENT_ID": "x"},
            "CRM_BACKEND amocrm needs AMOCRM_LONG_LIVED_TOKEN, or AMOCRM_CLIENT_ID, AMOCRM_CLIENT_SECRET",
        ),
        ({"RECORDING_LINK_KEYS": "short"}, "RECORDING_LINK_KEYS must be keys of at least 32 characters"),
        (
            {
                "CRM_BACKEND": "webhook",
                "CRM_WEBHOOK_URL": "https://crm.example/hook",
                "CRM_WEBHOOK_SECRET": "whsec_dGVzdA==",
                "MATCH_UNKNOWN": "create_contact",
            },
            "MATCH_UNKNOWN must be skip with CRM_BACKEND webhook",
        ),
        ({"RECORDING_RETENTION_DAYS": "a year"}, "RECORDING_RETENTION_DAYS must be a whole number of days"),
    ],
)
def test_each_backend_and_recording_setting_says_what_is_missing(env, expected):
    with pytest.raises(ConfigError) as caught:
        load(REQUIRED | env)
    assert any(line.startswith(expected) for line in caught.value.problems), caught.value.problems


def test_secrets_of_the_crm_backends_stay_out_of_repr():
    settings = load(
        REQUIRED
        | {
            "CRM_BACKEND": "amocrm",
            "AMOCRM_BASE_URL": "https://acme.amocrm.ru",
            "AMOCRM_LONG_LIVED_TOKEN": "llt-secret-value",
            "BITRIX24_WEBHOOK_URL": "https://portal.bitrix24.ru/rest/1/hooksecret",
            "RECORDING_LINK_KEYS": "k" * 40,
        }
    )
    text = repr(settings)
    assert "llt-secret-value" not in text and "hooksecret" not in text and "k" * 40 not in text


# Every public name the settings had when they were one table (CONTRACT.md: keep every one).
PUBLIC_NAMES = set(
    [
        "OPERATOR_AUTHORIZATION_TOKEN",
        "OPERATOR_NUMBERS",
        "REDIS_URL",
        "OPERATOR_API_URL",
        "OPERATOR_TIMEZONE",
        "DEFAULT_REGION",
        "OPERATOR_CONNECT_TIMEOUT",
        "OPERATOR_READ_TIMEOUT",
        "OPERATOR_MAX_RETRIES",
        "LOG_LEVEL",
        "DATABASE_URL",
        "WEBHOOK_SECRET",
        "API_TOKEN",
        "PUBLIC_URL",
        "CALLBACK_TTL",
        "CLICK_TO_CALL_DEBOUNCE",
        "ALLOW_PREMIUM_NUMBERS",
        "ALLOW_INTERNATIONAL_NUMBERS",
        "CALLBACK_REQUEST_FROM",
        "CALLBACK_REQUEST_LIMIT_PER_NUMBER",
        "CALLBACK_REQUEST_LIMIT_PER_IP",
        "CALLBACK_REQUEST_LIMIT_TOTAL",
        "CORS_ORIGINS",
        "MAX_BODY_BYTES",
        "TRUSTED_PROXIES",
        "WORKER_CLASS",
        "SYNC_INTERVAL",
        "SYNC_OVERLAP",
        "SYNC_FIRST_WINDOW",
        "CRM_BACKEND",
        "AMOCRM_BASE_URL",
        "AMOCRM_LONG_LIVED_TOKEN",
        "AMOCRM_CLIENT_ID",
        "AMOCRM_CLIENT_SECRET",
        "AMOCRM_REDIRECT_URI",
        "AMOCRM_AUTH_CODE",
        "AMOCRM_WEBHOOK_SECRET",
        "AMOCRM_ACCOUNT_ID",
        "AMOCRM_RATE",
        "WIDGET_CALL_LIMIT_PER_USER",
        "BITRIX24_WEBHOOK_URL",
        "BITRIX24_APP_TOKEN",
        "BITRIX24_DEFAULT_USER_ID",
        "BITRIX24_RATE",
        "CRM_WEBHOOK_URL",
        "CRM_WEBHOOK_SECRET",
        "MATCH_MULTIPLE",
        "MATCH_UNKNOWN",
        "INTEGRATION_CONFIG",
        "RECORDINGS_DIR",
        "RECORDING_LINK_KEYS",
        "RECORDING_LINK_TTL",
        "RECORDING_RETENTION_DAYS",
        "SECRET_KEYS",
        "ACCOUNT_CONCURRENCY",
        "ACCOUNT_CALLBACK_CONCURRENCY",
    ]
)


def test_every_public_name_is_read_by_exactly_one_schema_and_documented():
    names = setting_names("account") + setting_names("deployment")
    assert sorted(names) == sorted(PUBLIC_NAMES)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [name for name in sorted(PUBLIC_NAMES) if f"`{name}`" not in readme] == []


def test_a_stored_document_loads_as_the_environment_does():
    env = REQUIRED | {"SYNC_INTERVAL": "30", "ALLOW_PREMIUM_NUMBERS": "yes", "CRM_BACKEND": "bitrix24"}
    env |= {"BITRIX24_WEBHOOK_URL": "https://portal.bitrix24.ru/rest/1/abc/", "BITRIX24_RATE": "1.5"}
    document = env | {
        "OPERATOR_NUMBERS": ["4990000000", "4950000000"],
        "SYNC_INTERVAL": 30,
        "ALLOW_PREMIUM_NUMBERS": True,
        "BITRIX24_RATE": 1.5,
    }
    from_env, from_document = [], []
    assert load_document(env, from_env) == load_document(document, from_document)
    assert from_env == from_document == []


def test_units_are_named_in_problems():
    with pytest.raises(ConfigError) as caught:
        load(REQUIRED | {"MAX_BODY_BYTES": "lots", "SYNC_INTERVAL": "0"})
    assert caught.value.problems == [
        "MAX_BODY_BYTES must be a whole number of bytes",
        "SYNC_INTERVAL must be a whole number of seconds, at least 1",
    ]


def test_another_crms_settings_partly_set_are_refused_by_name(sandbox_env):
    with pytest.raises(ConfigError) as refused:
        load_settings(sandbox_env | {"CRM_WEBHOOK_SECRET": "whsec_c2VjcmV0"}, dotenv="/nonexistent")
    assert refused.value.problems == ["CRM_WEBHOOK_URL is required when CRM_WEBHOOK_SECRET is set"]
    assert "c2VjcmV0" not in str(refused.value)
