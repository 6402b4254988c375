"""How contacts-svc reads phone numbers: every common form of one number gives one E.164."""

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contacts_svc.model import InvalidContact, PhoneInput, normalise_number, normalise_phones, valid_region
from switchboard.phone import InvalidPhoneNumber


@pytest.mark.parametrize(
    "text",
    ["(415) 555-0123", "415.555.0123", "415 555 0123", "4155550123", "1-415-555-0123", "+1 415 555 0123",
     "+1 (415) 555-0123", "+14155550123", "001 415 555 0123", " 415-555-0123 "],
)
def test_us_forms_all_read_as_one_number(text: str) -> None:
    assert normalise_number(text, "US") == "+14155550123"


def test_national_forms_use_the_region_and_international_forms_ignore_it() -> None:
    assert normalise_number("030 1234567", "DE") == "+49301234567"
    assert normalise_number("+49 30 1234567", "US") == "+49301234567"
    assert normalise_number("0049 30 1234567", None) == "+49301234567"
    assert normalise_number("020 7946 0958", "GB") == "+442079460958"


def test_a_national_number_without_a_region_is_refused_with_a_sentence() -> None:
    with pytest.raises(InvalidPhoneNumber, match="international form"):
        normalise_number("415 555 0123", None)


@pytest.mark.parametrize("text", ["abc", "12", "", "+1 415", "999999999999999999999"])
def test_unparseable_numbers_are_refused(text: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalise_number(text, "US")


REGIONS = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if phonenumbers.example_number(r) is not None)
FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
]


@settings(max_examples=150, deadline=None)
@given(region=st.sampled_from(REGIONS), form=st.sampled_from(FORMATS), punctuation=st.sampled_from(["", "-", ".", " "]))
def test_any_form_of_a_valid_number_normalises_to_its_e164(region: str, form: int, punctuation: str) -> None:
    number = phonenumbers.example_number(region)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    text = phonenumbers.format_number(number, form)
    if punctuation:
        text = text.replace(" ", punctuation) if not text.startswith("+") else "+" + text[1:].replace(" ", punctuation)
    assert normalise_number(text, region) == e164


def test_phones_of_a_contact_are_deduplicated_and_labels_normalised() -> None:
    phones = normalise_phones(
        [PhoneInput(number="(415) 555-0123", label=" Mobile "), PhoneInput(number="+14155550123", label="work")], "US"
    )
    assert [(p.number, p.label) for p in phones] == [("+14155550123", "mobile")]


def test_one_bad_number_fails_the_contact_and_says_which() -> None:
    with pytest.raises(InvalidContact, match="Phone number 2"):
        normalise_phones([PhoneInput(number="+14155550123"), PhoneInput(number="nope")], "US")


def test_regions_must_be_known_to_libphonenumber() -> None:
    assert valid_region("de") == "DE"
    assert valid_region(None) is None
    with pytest.raises(ValueError, match="not a country code"):
        valid_region("XX")
