"""Destination normalisation and per-account transfer rules."""

import pytest
from call_control_svc.destinations import DestinationRules, resolve_destination
from call_control_svc.model import Destination
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from switchboard.messaging import DomainError, InvalidArgument, Refused

DEFAULT = DestinationRules()


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+14155550123", "US", "+14155550123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("001 415 555 0123", "DE", None),
        ("030 12345678", "DE", "+493012345678"),
        ("0044 20 7946 0958", "GB", "+442079460958"),
    ],
)
def test_numbers_are_normalised_to_e164_with_the_account_country(text, region, expected) -> None:
    if expected is None:
        with pytest.raises(Refused, match="international"):
            resolve_destination(text, region, DEFAULT)
        return
    assert resolve_destination(text, region, DEFAULT) == Destination(number=expected, kind="e164")


def test_short_digit_strings_are_internal_extensions() -> None:
    assert resolve_destination(" 2001 ", "US", DEFAULT) == Destination(number="2001", kind="extension")
    with pytest.raises(Refused, match="extensions"):
        resolve_destination("2001", "US", DestinationRules(allow_extensions=False))


@pytest.mark.parametrize(("text", "region"), [("911", "US"), ("112", "DE"), ("999", "GB")])
def test_emergency_numbers_are_refused(text, region) -> None:
    with pytest.raises(Refused, match="emergency"):
        resolve_destination(text, region, DEFAULT)


@pytest.mark.parametrize("text", ["not a number", "+1 555", "12345678901234567890", "", "+"])
def test_unreadable_destinations_are_invalid_arguments(text) -> None:
    with pytest.raises(InvalidArgument, match="area code"):
        resolve_destination(text, "US", DEFAULT)


def test_international_numbers_are_refused_by_default_and_allowed_by_rule() -> None:
    with pytest.raises(Refused, match="outside the account's country"):
        resolve_destination("+442079460958", "US", DEFAULT)
    allowed = resolve_destination("+442079460958", "US", DestinationRules(allow_international=True))
    assert allowed.number == "+442079460958"


def test_premium_rate_numbers_are_refused_unless_the_account_allows_them() -> None:
    with pytest.raises(Refused, match="premium-rate"):
        resolve_destination("+1 900 555 0123", "US", DEFAULT)
    assert (
        resolve_destination("+19005550123", "US", DestinationRules(block_premium_rate=False)).number == "+19005550123"
    )


def test_forbidden_prefixes_are_refused() -> None:
    rules = DestinationRules(forbidden_prefixes=["+1415"])
    with pytest.raises(Refused, match=r"starting with \+1415"):
        resolve_destination("(415) 555-0123", "US", rules)
    assert resolve_destination("(212) 555-0123", "US", rules).number == "+12125550123"


def test_forbidden_prefixes_must_be_e164_prefixes() -> None:
    with pytest.raises(ValidationError):
        DestinationRules(forbidden_prefixes=["1900"])
    with pytest.raises(ValidationError):
        DestinationRules(forbidden_prefixes=["+0"])
    assert DestinationRules(forbidden_prefixes=["+1900", "+1900"]).forbidden_prefixes == ["+1900"]


@given(st.text(max_size=40), st.sampled_from(["US", "DE", "GB", "FR"]))
def test_any_text_is_either_a_valid_destination_or_a_clear_domain_error(text, region) -> None:
    try:
        destination = resolve_destination(text, region, DEFAULT)
    except DomainError as e:
        assert e.message
        return
    if destination.kind == "extension":
        assert destination.number.isdigit() and 2 <= len(destination.number) <= 6
    else:
        assert destination.number.startswith("+") and destination.number[1:].isdigit()


@pytest.mark.parametrize(
    ("text", "extension"),
    [
        ("+1 415 555 0123 ext 5", "5"),
        ("4155550123x12", "12"),
        ("tel:+14155550123;ext=22", "22"),
        ("+14155550123;ext=22", "22"),
        ("+14155550123,,22", "22"),
        ("(415) 555-0123 extension 7", "7"),
    ],
)
def test_an_extension_on_a_number_is_kept_to_be_dialled_after_the_connection(text, extension) -> None:
    assert resolve_destination(text, "US", DEFAULT) == Destination(
        number="+14155550123", kind="e164", extension=extension
    )


def test_a_number_without_an_extension_has_none() -> None:
    assert resolve_destination("+14155550123", "US", DEFAULT).extension is None
    assert resolve_destination("2001", "US", DEFAULT).extension is None


@pytest.mark.parametrize("text", ["+14155550123 ext abc", "4155550123w22", "2001 ext 5", "+1 555 ext 5"])
def test_an_unreadable_extension_is_refused_never_dropped(text) -> None:
    with pytest.raises(InvalidArgument, match="area code"):
        resolve_destination(text, "US", DEFAULT)


def test_the_rules_apply_to_the_line_of_a_number_with_an_extension() -> None:
    with pytest.raises(Refused, match="premium-rate"):
        resolve_destination("+1 900 555 0123 ext 5", "US", DEFAULT)
    with pytest.raises(Refused, match="emergency"):
        resolve_destination("911", "US", DEFAULT)
