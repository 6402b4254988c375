"""The lookup: fan-out to every source, per-source deadline, merge, cache and its invalidation.

Sources here are in-memory fakes; the real connectors are tested against local HTTP servers and the
whole service against Kafka and the database in tests/integration."""

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from contacts_svc.cache import LookupCache
from contacts_svc.connectors import SearchQuery, SourceUnavailable
from contacts_svc.handlers import WITHHELD, lookup_contact
from contacts_svc.lookup import ContactFinder, merge
from contacts_svc.model import Contact, PhoneEntry, SourceConnection, SourceStatus
from switchboard.contracts import CallContext, Command, CommandType
from switchboard.contracts.contacts import (
    ContactLookup,
    ContactMatch,
    ContactPhone,
    ContactSource,
    ContactSourceConnected,
    ContactUpdated,
    LookupContact,
)
from switchboard.messaging import InvalidArgument, NotFound

NOW = datetime(2025, 1, 1, tzinfo=UTC)
ANN = "+14155550123"


def contact(account_id: str, contact_id: str, name: str, *numbers: str, company: str | None = None) -> Contact:
    return Contact(
        account_id=account_id,
        contact_id=contact_id,
        name=name,
        company=company,
        phones=[PhoneEntry(number=n, label="work") for n in numbers],
        created_at=NOW,
        updated_at=NOW,
    )


def match(name: str, source: ContactSource, *numbers: str, company: str | None = None, email: str | None = None) -> ContactMatch:
    return ContactMatch(
        name=name,
        company=company,
        email=email,
        phone_numbers=[ContactPhone(number=n, label=None) for n in numbers],
        source=source,
    )


class Natives:
    def __init__(self, *contacts: Contact) -> None:
        self.contacts = list(contacts)
        self.calls = 0

    async def find_by_number(self, account_id: str, e164: str, *, limit: int) -> list[Contact]:
        self.calls += 1
        return [c for c in self.contacts if c.account_id == account_id and e164 in c.numbers][:limit]


class Connections:
    def __init__(self, *connections: SourceConnection) -> None:
        self.connections = list(connections)

    async def list(self, account_id: str) -> list[SourceConnection]:
        return [c for c in self.connections if c.account_id == account_id]


class FakeConnector:
    def __init__(self, source: ContactSource, *matches: ContactMatch, fail: bool = False, stall: bool = False) -> None:
        self.source = source
        self.matches = list(matches)
        self.fail = fail
        self.stall = stall
        self.queries: list[SearchQuery] = []

    async def search(self, connection: SourceConnection, query: SearchQuery) -> list[ContactMatch]:
        self.queries.append(query)
        if self.fail:
            raise SourceUnavailable(f"{self.source} answered 503")
        if self.stall:
            await asyncio.Event().wait()
        return [m for m in self.matches if query.e164 in {p.number for p in m.phone_numbers}]

    async def verify(self, connection: SourceConnection): ...

    async def warm_up(self, connection: SourceConnection) -> None: ...


def connection(account_id: str, source: ContactSource, status: SourceStatus = SourceStatus.connected) -> SourceConnection:
    return SourceConnection(account_id=account_id, source=source, refresh_token="r", status=status, connected_at=NOW)


class Regions:
    def __init__(self, regions: dict[str, str]) -> None:
        self.regions = regions

    async def region(self, account_id: str) -> str | None:
        return self.regions.get(account_id)


def finder(natives: Natives, connections: Connections, *connectors: FakeConnector, cache: LookupCache | None = None,
           timeout: float = 5.0) -> ContactFinder:
    return ContactFinder(
        natives,
        connections,
        {c.source: c for c in connectors},
        cache if cache is not None else LookupCache(0, 10),
        source_timeout=timeout,
        max_matches=10,
    )


def command(number: str, *, account_id: str = "acc-1", region: str | None = "US", timeout: float = 5.0) -> Command[LookupContact]:
    context = CallContext(account_id=account_id, persona_id="p1", call_id="call-1", region=region)
    return Command[LookupContact].build(
        CommandType.lookup_contact, context, LookupContact(phone_number=number), timeout=timedelta(seconds=timeout), reply_to="r"
    )


async def test_every_source_is_asked_and_the_answers_merged() -> None:
    google = FakeConnector(ContactSource.google, match("Ann Smith", ContactSource.google, ANN, "+16502530000", email="ann@g.com"))
    microsoft = FakeConnector(ContactSource.microsoft, match("Bob Front Desk", ContactSource.microsoft, ANN, company="Acme"))
    find = finder(
        Natives(contact("acc-1", "c1", "ann  SMITH", ANN)),
        Connections(connection("acc-1", ContactSource.google), connection("acc-1", ContactSource.microsoft)),
        google,
        microsoft,
    )
    result = await find.find("acc-1", ANN, "US", budget=5)
    assert result.found and result.unavailable_sources == []
    ann, bob = result.contacts
    assert (ann.name, ann.source, ann.also_in, ann.email) == ("ann  SMITH", ContactSource.native, [ContactSource.google], "ann@g.com")
    assert [p.number for p in ann.phone_numbers] == [ANN, "+16502530000"]
    assert (bob.source, bob.company) == (ContactSource.microsoft, "Acme")
    assert google.queries[0].e164 == ANN and google.queries[0].region == "US"


async def test_a_source_that_fails_or_is_late_is_named_and_the_others_still_answer() -> None:
    google = FakeConnector(ContactSource.google, fail=True)
    microsoft = FakeConnector(ContactSource.microsoft, stall=True)
    find = finder(
        Natives(contact("acc-1", "c1", "Ann", ANN)),
        Connections(connection("acc-1", ContactSource.google), connection("acc-1", ContactSource.microsoft)),
        google,
        microsoft,
        timeout=0.2,
    )
    result = await find.find("acc-1", ANN, "US", budget=5)
    assert [c.name for c in result.contacts] == ["Ann"]
    assert result.unavailable_sources == [ContactSource.google, ContactSource.microsoft]


async def test_the_command_deadline_shortens_the_per_source_timeout() -> None:
    stalled = FakeConnector(ContactSource.google, stall=True)
    find = finder(Natives(), Connections(connection("acc-1", ContactSource.google)), stalled, timeout=60)
    result = await find.find("acc-1", ANN, "US", budget=0.1)
    assert result == ContactLookup(phone_number=ANN, found=False, contacts=[], unavailable_sources=[ContactSource.google])


async def test_a_source_that_needs_reconsent_is_not_asked_but_reported() -> None:
    google = FakeConnector(ContactSource.google, match("Ann", ContactSource.google, ANN))
    find = finder(Natives(), Connections(connection("acc-1", ContactSource.google, SourceStatus.reauthorization_required)), google)
    result = await find.find("acc-1", ANN, "US", budget=5)
    assert result.unavailable_sources == [ContactSource.google] and google.queries == []


async def test_sources_of_other_accounts_are_never_asked() -> None:
    google = FakeConnector(ContactSource.google, match("Ann", ContactSource.google, ANN))
    natives = Natives(contact("acc-2", "c1", "Other tenant", ANN))
    find = finder(natives, Connections(connection("acc-2", ContactSource.google)), google)
    result = await find.find("acc-1", ANN, "US", budget=5)
    assert (result.found, result.contacts, google.queries) == (False, [], [])


def test_merge_keeps_different_people_apart_and_orders_by_source() -> None:
    merged = merge(
        [
            match("Zed", ContactSource.microsoft, ANN),
            match("Amy", ContactSource.google, ANN, company="G"),
            match("amy", ContactSource.microsoft, "+16502530000", company="M"),
            match("Bea", ContactSource.native, ANN),
        ]
    )
    assert [(m.name, m.source, m.company, m.also_in) for m in merged] == [
        ("Bea", ContactSource.native, None, []),
        ("Amy", ContactSource.google, "G", [ContactSource.microsoft]),
        ("Zed", ContactSource.microsoft, None, []),
    ]
    assert [p.number for p in merged[1].phone_numbers] == [ANN, "+16502530000"]


async def test_complete_results_are_cached_until_a_change_touches_their_number() -> None:
    natives = Natives(contact("acc-1", "c1", "Ann", ANN))
    google = FakeConnector(ContactSource.google)
    cache = LookupCache(60, 100)
    find = finder(natives, Connections(connection("acc-1", ContactSource.google)), google, cache=cache)
    first = await find.find("acc-1", ANN, "US", budget=5)
    assert await find.find("acc-1", ANN, "US", budget=5) == first
    assert (natives.calls, len(google.queries)) == (1, 1)

    await cache.on_event(
        ContactUpdated(event_id="e1", account_id="acc-1", contact_id="c1", name="Ann", phone_numbers=["+16502530000"],
                       previous_phone_numbers=[ANN], changed_at=NOW)
    )
    await find.find("acc-1", ANN, "US", budget=5)
    assert natives.calls == 2

    await cache.on_event(ContactSourceConnected(event_id="e2", account_id="acc-1", source=ContactSource.google, changed_at=NOW))
    await find.find("acc-1", ANN, "US", budget=5)
    assert natives.calls == 3


async def test_partial_results_are_not_cached() -> None:
    natives = Natives()
    find = finder(natives, Connections(connection("acc-1", ContactSource.google)), FakeConnector(ContactSource.google, fail=True),
                  cache=LookupCache(60, 100))
    await find.find("acc-1", ANN, "US", budget=5)
    await find.find("acc-1", ANN, "US", budget=5)
    assert natives.calls == 2


def test_cache_expires_entries_bounds_its_size_and_ignores_results_older_than_an_invalidation() -> None:
    now = [0.0]
    cache = LookupCache(10, 2, clock=lambda: now[0])
    result = ContactLookup(phone_number=ANN, found=False, contacts=[])
    cache.put("a", "1", result, generation=0)
    cache.put("a", "2", result, generation=0)
    cache.put("a", "3", result, generation=0)
    assert (cache.get("a", "1"), len(cache)) == (None, 2)
    now[0] = 11
    assert cache.get("a", "2") is None
    generation = cache.generation
    cache.forget_account("b")
    cache.put("a", "4", result, generation=generation)
    assert cache.get("a", "4") is None


class CountingConnections(Connections):
    def __init__(self, *connections: SourceConnection) -> None:
        super().__init__(*connections)
        self.reads = 0

    async def list(self, account_id: str) -> list[SourceConnection]:
        self.reads += 1
        return await super().list(account_id)


async def test_an_account_without_sources_is_remembered_until_one_is_connected() -> None:
    now = [0.0]
    cache = LookupCache(60, 100, clock=lambda: now[0])
    connections = CountingConnections()
    google = FakeConnector(ContactSource.google, match("Ann G", ContactSource.google, ANN))
    find = finder(Natives(contact("acc-1", "c1", "Ann", ANN)), connections, google, cache=cache)

    await find.find("acc-1", ANN, "US", budget=5)
    await find.find("acc-1", "+16502530000", "US", budget=5)  # another number: no cached result, no connections read
    assert connections.reads == 1 and cache.has_no_sources("acc-1") and not cache.has_no_sources("acc-2")

    connections.connections.append(connection("acc-1", ContactSource.google))
    await cache.on_event(ContactSourceConnected(event_id="e1", account_id="acc-1", source=ContactSource.google, changed_at=NOW))
    found = await find.find("acc-1", ANN, "US", budget=5)
    assert connections.reads == 2 and len(google.queries) == 1
    assert found.found
    assert not cache.has_no_sources("acc-1")


async def test_an_account_with_only_a_source_needing_reconsent_is_not_remembered_as_unconnected() -> None:
    cache = LookupCache(60, 100)
    connections = CountingConnections(connection("acc-1", ContactSource.google, status=SourceStatus.reauthorization_required))
    find = finder(Natives(), connections, FakeConnector(ContactSource.google), cache=cache)
    await find.find("acc-1", ANN, "US", budget=5)
    await find.find("acc-1", "+16502530000", "US", budget=5)
    assert connections.reads == 2 and not cache.has_no_sources("acc-1")


def test_the_unconnected_memo_expires_and_ignores_a_read_older_than_an_invalidation() -> None:
    now = [0.0]
    cache = LookupCache(10, 100, clock=lambda: now[0])
    generation = cache.generation
    cache.forget_account("acc-1")
    cache.put_no_sources("acc-1", generation=generation)
    assert not cache.has_no_sources("acc-1")
    cache.put_no_sources("acc-1", generation=cache.generation)
    assert cache.has_no_sources("acc-1")
    now[0] = 11
    assert not cache.has_no_sources("acc-1")


async def test_handler_normalises_with_the_command_region_then_the_account_region() -> None:
    natives = Natives(contact("acc-1", "c1", "Ann", ANN), contact("acc-de", "c1", "Jürgen", "+49301234567"))
    handler = partial(lookup_contact, finder=finder(natives, Connections()), regions=Regions({"acc-de": "DE"}), reply_margin=0.1)
    assert (await handler(command("(415) 555-0123"))).contacts[0].name == "Ann"
    assert (await handler(command("1-415-555-0123"))).phone_number == ANN
    found = await handler(command("030 1234567", account_id="acc-de", region=None))
    assert (found.phone_number, found.contacts[0].name) == ("+49301234567", "Jürgen")


@pytest.mark.parametrize(
    ("number", "region", "message"),
    [
        ("hello", "US", "'hello' is not a phone number. Ask the caller"),
        ("555", "US", "is not a valid phone number"),
        ("415 555 0123", None, "no country code"),
    ],
)
async def test_handler_refuses_numbers_it_cannot_read_with_a_sentence_for_the_model(number: str, region: str | None, message: str) -> None:
    natives = Natives()
    handler = partial(lookup_contact, finder=finder(natives, Connections()), regions=Regions({}), reply_margin=0.1)
    with pytest.raises(InvalidArgument, match=message):
        await handler(command(number, region=region))
    assert natives.calls == 0


@pytest.mark.parametrize("number", ["", "   ", "anonymous", "Anonymous", "restricted", "unavailable", "private"])
async def test_no_number_to_look_up_is_a_sentence_telling_the_model_to_ask_for_one(number: str) -> None:
    natives = Natives()
    handler = partial(lookup_contact, finder=finder(natives, Connections()), regions=Regions({}), reply_margin=0.1)
    with pytest.raises(NotFound) as raised:
        await handler(command(number))
    assert str(raised.value) == WITHHELD
    assert natives.calls == 0


def test_an_empty_number_reaches_the_service_so_it_can_say_what_to_do() -> None:
    assert LookupContact(phone_number="").phone_number == ""
    assert "minLength" not in LookupContact.model_json_schema()["properties"]["phone_number"]
