"""Phone numbers: E.164, extensions kept where they are dialled, and withheld caller ids."""

import pytest

from switchboard.phone import InvalidPhoneNumber, PhoneNumber, is_withheld, parse_number, to_e164


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+1 415 555 0123 ext 5", PhoneNumber("+14155550123", "5")),
        ("4155550123x12", PhoneNumber("+14155550123", "12")),
        ("tel:+14155550123;ext=22", PhoneNumber("+14155550123", "22")),
        ("+14155550123;ext=22", PhoneNumber("+14155550123", "22")),
        ("+14155550123,,22", PhoneNumber("+14155550123", "22")),
        ("(415) 555-0123 extension 7", PhoneNumber("+14155550123", "7")),
        ("+1 415 555 0123", PhoneNumber("+14155550123", None)),
        ("0044 20 7946 0958", PhoneNumber("+442079460958", None)),
    ],
)
def test_a_number_keeps_its_extension(text, expected) -> None:
    assert parse_number(text, "US") == expected
    assert to_e164(text, "US") == expected.e164


def test_a_number_with_an_extension_reads_in_rfc_3966_form() -> None:
    assert str(PhoneNumber("+14155550123", "22")) == "+14155550123;ext=22"
    assert str(PhoneNumber("+14155550123")) == "+14155550123"
    assert parse_number(str(PhoneNumber("+14155550123", "22"))) == PhoneNumber("+14155550123", "22")


@pytest.mark.parametrize("text", ["", "  ", "+14155550123 ext abc", "4155550123w22", "anonymous", "x" * 65])
def test_anything_else_is_an_invalid_number_with_a_sentence(text) -> None:
    with pytest.raises(InvalidPhoneNumber) as raised:
        parse_number(text, "US")
    assert str(raised.value).endswith(".")


@pytest.mark.parametrize(
    "text", [None, "", "  ", "anonymous", "Anonymous", "RESTRICTED", "unavailable", "private", "withheld", "P"]
)
def test_withheld_forms_are_recognised(text) -> None:
    assert is_withheld(text)


@pytest.mark.parametrize("text", ["+14155550123", "4155550123", "2001", "anonymous caller"])
def test_numbers_are_not_withheld(text) -> None:
    assert not is_withheld(text)
