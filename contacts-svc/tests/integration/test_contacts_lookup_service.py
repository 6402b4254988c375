"""lookup_contact end to end: Kafka request -> contacts-svc -> FerretDB + the fake Google and
Microsoft servers -> reply."""

import pytest

from switchboard.contracts import CallContext, CommandType, ErrorCode
from switchboard.contracts.contacts import ContactLookup, ContactSource, LookupContact
from contacts_svc.handlers import WITHHELD
from switchboard.messaging import RequestFailed

pytestmark = pytest.mark.integration

ANN = "+14155550123"


def context(account_id: str, region: str | None = "US") -> CallContext:
    return CallContext(account_id=account_id, persona_id="per-1", call_id=f"call-{account_id}", region=region)


async def lookup(requester, account_id: str, number: str, region: str | None = "US") -> ContactLookup:
    result = await requester.request(
        CommandType.lookup_contact, context(account_id, region), LookupContact(phone_number=number), timeout=10
    )
    assert isinstance(result, ContactLookup)
    return result


async def seed(admin, account_id: str, contact_id: str, name: str, *numbers: str, region: str = "US", **fields) -> None:
    response = await admin.put(
        f"/admin/v1/accounts/{account_id}/contacts/{contact_id}",
        params={"region": region},
        json={"name": name, "phone_numbers": [{"number": n, "label": "work"} for n in numbers], **fields},
    )
    assert response.status_code == 201, response.text


async def connect_sources(admin, google, microsoft, account_id: str) -> None:
    for provider, source in ((google, "google"), (microsoft, "microsoft")):
        provider.refresh_tokens.add(f"refresh-{account_id}")
        response = await admin.put(
            f"/admin/v1/accounts/{account_id}/sources/{source}", json={"refresh_token": f"refresh-{account_id}"}
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "form",
    ["+14155550123", "(415) 555-0123", "415.555.0123", "415 555 0123", "1-415-555-0123", "+1 (415) 555-0123",
     "001 415 555 0123", "4155550123"],
)
async def test_lookup_hits_native_google_and_microsoft_in_any_number_form(
    requester, admin, google, microsoft, account, form
) -> None:
    await seed(admin, account, "ann", "Ann Native", "(415) 555-0123", company="Acme")
    google.add_person("Gina Google", ("+1 415-555-0123", ANN), email="gina@example.com")
    google.add_person("ann native", ("415 555 0123", ANN), ("+1 650 253 0000", "+16502530000"))
    microsoft.add_contact("Max Page One", mobile="+1 212 555 0199")
    microsoft.add_contact("Nia Page One", business=["+49 30 1234567"])
    microsoft.add_contact("Mike Microsoft", business=["415.555.0123"], company="Contoso")
    await connect_sources(admin, google, microsoft, account)

    result = await lookup(requester, account, form)

    assert result.phone_number == ANN and result.found
    assert result.unavailable_sources == []
    by_name = {c.name: c for c in result.contacts}
    assert set(by_name) == {"Ann Native", "Gina Google", "Mike Microsoft"}
    ann = by_name["Ann Native"]
    assert (ann.source, ann.also_in, ann.company) == (ContactSource.native, [ContactSource.google], "Acme")
    assert [p.number for p in ann.phone_numbers] == [ANN, "+16502530000"]
    assert by_name["Gina Google"].source is ContactSource.google
    assert (by_name["Mike Microsoft"].source, by_name["Mike Microsoft"].company) == (ContactSource.microsoft, "Contoso")


async def test_national_numbers_are_read_with_the_callers_account_country(requester, admin, account) -> None:
    await seed(admin, account, "juergen", "Jürgen", "030 1234567", region="DE")
    result = await lookup(requester, account, "030 1234567", region="DE")
    assert (result.phone_number, [c.name for c in result.contacts]) == ("+49301234567", ["Jürgen"])
    assert (await lookup(requester, account, "+49 30 1234567")).found


async def test_a_source_that_times_out_is_named_and_the_others_still_answer(
    requester, admin, google, microsoft, account
) -> None:
    await seed(admin, account, "ann", "Ann Native", ANN)
    google.add_person("Gina Google", (ANN, ANN))
    microsoft.add_contact("Mike Microsoft", mobile=ANN)
    await connect_sources(admin, google, microsoft, account)
    microsoft.behaviour.stall = True

    result = await lookup(requester, account, ANN)

    assert {(c.name, c.source) for c in result.contacts} == {
        ("Ann Native", ContactSource.native),
        ("Gina Google", ContactSource.google),
    }
    assert result.unavailable_sources == [ContactSource.microsoft]


async def test_a_source_answering_429_then_5xx_is_unavailable_but_the_lookup_succeeds(
    requester, admin, google, microsoft, account
) -> None:
    google.add_person("Gina Google", (ANN, ANN))
    await connect_sources(admin, google, microsoft, account)
    google.behaviour.statuses = [429, 503]
    result = await lookup(requester, account, ANN)
    assert (result.found, result.unavailable_sources) == (False, [ContactSource.google])
    assert (await lookup(requester, account, ANN)).contacts[0].name == "Gina Google"


async def test_the_same_number_in_two_accounts_stays_in_its_own_account(requester, admin, google, microsoft) -> None:
    first, second = "acc-iso-a", "acc-iso-b"
    await seed(admin, first, "c1", "First Tenant", ANN)
    await seed(admin, second, "c1", "Second Tenant", "415-555-0123")
    google.add_person("First Tenant Google", (ANN, ANN))
    await connect_sources(admin, google, microsoft, first)
    requests_before = len(google.api_requests)

    a = await lookup(requester, first, ANN)
    b = await lookup(requester, second, ANN)

    assert {c.name for c in a.contacts} == {"First Tenant", "First Tenant Google"}
    assert [c.name for c in b.contacts] == ["Second Tenant"]
    assert len(google.api_requests) == requests_before + 1
    assert not (await lookup(requester, "acc-iso-c", ANN)).found


@pytest.mark.parametrize(
    ("number", "region", "says"),
    [("not a number", "US", "is not a phone number"), ("12", "US", "is not a valid phone number"),
     ("415 555 0123", None, "no country code")],
)
async def test_an_unreadable_number_is_a_clear_tool_error(requester, account, number, region, says) -> None:
    with pytest.raises(RequestFailed) as failed:
        await lookup(requester, account, number, region=region)
    assert failed.value.error.code is ErrorCode.invalid_argument
    assert says in failed.value.error.message and "Ask the caller" in failed.value.error.message


async def test_admin_changes_reach_the_next_lookup_despite_the_cache(requester, admin, account, read_events) -> None:
    await seed(admin, account, "ann", "Ann Before", ANN)
    assert (await lookup(requester, account, ANN)).contacts[0].name == "Ann Before"
    response = await admin.put(
        f"/admin/v1/accounts/{account}/contacts/ann", json={"name": "Ann After", "phone_numbers": [{"number": ANN}]}
    )
    assert response.json()["outcome"] == "updated"
    assert (await lookup(requester, account, ANN)).contacts[0].name == "Ann After"
    assert (await admin.delete(f"/admin/v1/accounts/{account}/contacts/ann")).status_code == 204
    assert not (await lookup(requester, account, ANN)).found

    events = await read_events(account, 3)
    assert [e["event"] for e in events] == ["contact.created", "contact.updated", "contact.deleted"]
    assert events[1]["phone_numbers"] == [ANN] and events[1]["previous_phone_numbers"] == [ANN]


@pytest.mark.parametrize("number", ["", "anonymous", "Restricted"])
async def test_a_withheld_number_is_a_sentence_the_model_can_act_on(requester, admin, account, number) -> None:
    await seed(admin, account, "ann", "Ann Smith", ANN)
    withheld_call = CallContext(
        account_id=account, persona_id="per-1", call_id="a84b4c76e66710@pc33.atlanta.example.com", region="US"
    )
    with pytest.raises(RequestFailed) as failed:
        await requester.request(CommandType.lookup_contact, withheld_call, LookupContact(phone_number=number), timeout=10)
    assert failed.value.error.code is ErrorCode.not_found
    assert failed.value.error.message == WITHHELD


async def test_a_sip_call_id_does_not_get_in_the_way_of_a_lookup(requester, admin, account) -> None:
    await seed(admin, account, "ann", "Ann Smith", ANN)
    sip_call = CallContext(
        account_id=account, persona_id="per-1", call_id='a84b/4c76?e6"6710@pc33.atlanta.example.com', region="US"
    )
    result = await requester.request(
        CommandType.lookup_contact, sip_call, LookupContact(phone_number="+1 415 555 0123 ext 5"), timeout=10
    )
    assert isinstance(result, ContactLookup) and result.phone_number == ANN
    assert [c.name for c in result.contacts] == ["Ann Smith"]
