"""How a caller is recognised, and the settings of the process."""

import pytest

from leads_svc.model import Caller, identify_caller, match_key, new_id
from leads_svc.settings import LeadsSettings


@pytest.mark.parametrize(
    ("number", "region", "e164"),
    [
        ("+14155550123", "US", "+14155550123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("415.555.0123", None, "+14155550123"),
        ("001 415 555 0123", "DE", "+14155550123"),
        ("030 123456", "DE", "+4930123456"),
        (" +44 20 7946 0958 ", "US", "+442079460958"),
    ],
)
def test_caller_numbers_are_normalised_to_e164(number, region, e164) -> None:
    assert identify_caller(number, region) == Caller(phone_e164=e164, caller_id=None)


@pytest.mark.parametrize("number", ["anonymous", "12", "+1 555", "x" * 64])
def test_an_unreadable_caller_id_is_kept_as_given(number) -> None:
    caller = identify_caller(number, "US")
    assert caller == Caller(phone_e164=None, caller_id=number) and not caller.deduplicable


def test_the_match_key_is_the_number_or_the_call() -> None:
    assert match_key(Caller("+14155550123", None), "call-1") == "+14155550123"
    assert match_key(Caller(None, "anonymous"), "call-1") == "call:call-1"
    assert match_key(Caller(None, None), "a84b@pc33.example.com/x") == "call:a84b@pc33.example.com/x"


def test_ids_are_24_hex_digits_that_grow() -> None:
    first, second = new_id(), new_id()
    assert len(first) == 24 and int(first, 16) >= 0 and second > first


def test_settings_have_their_own_prefix_and_defaults(monkeypatch) -> None:
    assert (LeadsSettings().mongo_database, LeadsSettings().http_port) == ("leads", 9504)
    monkeypatch.setenv("SWITCHBOARD_LEADS_HTTP_PORT", "9999")
    monkeypatch.setenv("SWITCHBOARD_LEADS_MONGO_DATABASE", "leads_eu")
    monkeypatch.setenv("SWITCHBOARD_ADMIN_TOKEN", "s3cret")
    monkeypatch.setenv("SWITCHBOARD_MONGO_URI", "mongodb://db:27017")
    settings = LeadsSettings()
    assert (settings.http_port, settings.mongo_database, settings.mongo_uri) == (9999, "leads_eu", "mongodb://db:27017")
    assert settings.admin_token is not None and settings.admin_token.get_secret_value() == "s3cret"
