"""The Google and Microsoft connectors against local servers speaking their APIs: searches, paging,
OAuth refresh on expiry and on 401, 429/5xx retries, slow answers, and no secrets or numbers in logs
or spans."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from contacts_svc.bootstrap import build_connectors
from contacts_svc.cache import LookupCache
from contacts_svc.connectors import NotConfigured, ReauthorizationRequired, SearchQuery, SourceUnavailable
from contacts_svc.lookup import ContactFinder
from contacts_svc.model import AccessToken, SourceConnection, SourceStatus
from contacts_svc.settings import ContactsSettings
from switchboard.contracts.contacts import ContactPhone, ContactSource

ANN = "+14155550123"


class Tokens:
    """The token store, in memory."""

    def __init__(self) -> None:
        self.connections: dict[tuple[str, ContactSource], SourceConnection] = {}
        self.marked: list[str] = []

    def add(self, connection: SourceConnection) -> SourceConnection:
        self.connections[(connection.account_id, connection.source)] = connection
        return connection

    async def get(self, account_id: str, source: ContactSource) -> SourceConnection | None:
        return self.connections.get((account_id, source))

    async def list(self, account_id: str) -> list[SourceConnection]:
        return [c for (a, _), c in self.connections.items() if a == account_id]

    async def store_token(self, connection: SourceConnection, token: AccessToken) -> None:
        update = {"access_token": token.value, "access_token_expires_at": token.expires_at}
        if token.refresh_token:
            update["refresh_token"] = token.refresh_token
        self.add(connection.model_copy(update=update))

    async def mark_unauthorized(self, connection: SourceConnection, reason: str) -> None:
        self.marked.append(reason)
        self.add(connection.model_copy(update={"status": SourceStatus.reauthorization_required, "last_error": reason}))


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def settings_for(google, microsoft, **overrides) -> ContactsSettings:
    values = dict(
        google_api_base=google.base_url,
        google_token_url=f"{google.base_url}/token",
        google_client_id="client-id",
        google_client_secret="client-secret",
        microsoft_api_base=microsoft.base_url,
        microsoft_token_url=f"{microsoft.base_url}/common/oauth2/v2.0/token",
        microsoft_client_id="client-id",
        microsoft_client_secret="client-secret",
        microsoft_page_size=2,
        source_retries=1,
    )
    return ContactsSettings(**{**values, **overrides})


def connect(provider, tokens: Tokens, source: ContactSource, *, account_id: str = "acc-1", fresh: bool = True) -> SourceConnection:
    provider.refresh_tokens.add(f"refresh-{account_id}")
    access = None
    if fresh:
        access = f"seeded-{account_id}-{source}"
        provider.access_tokens.add(access)
    return tokens.add(
        SourceConnection(
            account_id=account_id,
            source=source,
            refresh_token=SecretStr(f"refresh-{account_id}"),
            access_token=SecretStr(access) if access else None,
            access_token_expires_at=datetime.now(UTC) + timedelta(hours=1) if access else None,
            connected_at=datetime.now(UTC),
        )
    )


def query(region: str | None = "US", seconds: float = 10) -> SearchQuery:
    return SearchQuery(account_id="acc-1", e164=ANN, region=region, deadline=asyncio.get_running_loop().time() + seconds)


async def test_google_search_returns_only_people_with_exactly_that_number(google, microsoft, http) -> None:
    google.add_person("Ann Smith", ("(415) 555-0123", "+14155550123"), ("650-253-0000", None), company="Acme", email="ann@acme.com")
    google.add_person("Prefix Only", ("+1 415 555 01234", None))
    google.add_person("Someone Else", ("+1 212 555 0199", "+12125550199"))
    tokens = Tokens()
    conn = connect(google, tokens, ContactSource.google)
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.google]
    matches = await connector.search(conn, query())
    assert len(matches) == 1
    ann = matches[0]
    assert (ann.name, ann.company, ann.email, ann.source) == ("Ann Smith", "Acme", "ann@acme.com", ContactSource.google)
    assert ann.phone_numbers == [ContactPhone(number=ANN, label="mobile"), ContactPhone(number="+16502530000", label="mobile")]
    assert google.api_requests[-1]["params"] == {
        "query": ANN, "readMask": "names,phoneNumbers,organizations,emailAddresses", "pageSize": "30"
    }
    assert google.token_requests == []


async def test_an_expired_token_is_refreshed_before_the_request_and_kept(google, microsoft, http) -> None:
    google.add_person("Ann", (ANN, ANN))
    tokens = Tokens()
    conn = connect(google, tokens, ContactSource.google, fresh=False)
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.google]
    assert [m.name for m in await connector.search(conn, query())] == ["Ann"]
    assert [r["grant_type"] for r in google.token_requests] == ["refresh_token"]
    assert google.token_requests[0]["refresh_token"] == "refresh-acc-1"
    stored = await tokens.get("acc-1", ContactSource.google)
    assert stored.access_token.get_secret_value() in google.access_tokens


async def test_a_401_refreshes_once_and_retries(google, microsoft, http) -> None:
    google.add_person("Ann", (ANN, ANN))
    tokens = Tokens()
    conn = connect(google, tokens, ContactSource.google)
    google.expire_access_tokens()
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.google]
    assert [m.name for m in await connector.search(conn, query())] == ["Ann"]
    assert len(google.token_requests) == 1 and len(google.api_requests) == 2


async def test_a_refused_grant_marks_the_connection_for_reconsent(google, microsoft, http) -> None:
    tokens = Tokens()
    conn = connect(google, tokens, ContactSource.google, fresh=False)
    google.refresh_tokens.clear()
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.google]
    with pytest.raises(ReauthorizationRequired, match="invalid_grant"):
        await connector.search(conn, query())
    assert (await tokens.get("acc-1", ContactSource.google)).status is SourceStatus.reauthorization_required


async def test_a_401_even_after_refresh_marks_the_connection_for_reconsent(google, microsoft, http) -> None:
    tokens = Tokens()
    conn = connect(google, tokens, ContactSource.google)
    google.behaviour.statuses = [401, 401]
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.google]
    with pytest.raises(ReauthorizationRequired):
        await connector.search(conn, query())
    assert tokens.marked == ["google refused the account's access (401)"]


async def test_429_with_a_short_retry_after_is_retried(google, microsoft, http) -> None:
    google.add_person("Ann", (ANN, ANN))
    tokens = Tokens()
    conn = connect(google, tokens, ContactSource.google)
    google.behaviour = type(google.behaviour)(statuses=[429], retry_after="0")
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.google]
    assert [m.name for m in await connector.search(conn, query())] == ["Ann"]
    assert len(google.api_requests) == 2


async def test_429_asking_to_wait_past_the_deadline_gives_up_at_once(google, microsoft, http) -> None:
    tokens = Tokens()
    conn = connect(google, tokens, ContactSource.google)
    google.behaviour = type(google.behaviour)(statuses=[429], retry_after="120")
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.google]
    with pytest.raises(SourceUnavailable, match="answered 429"):
        await connector.search(conn, query())
    assert len(google.api_requests) == 1


async def test_5xx_is_retried_within_the_retry_budget(google, microsoft, http) -> None:
    microsoft.add_contact("Bob", mobile="+1 415 555 0123")
    tokens = Tokens()
    conn = connect(microsoft, tokens, ContactSource.microsoft)
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.microsoft]
    microsoft.behaviour.statuses = [503]
    assert [m.name for m in await connector.search(conn, query())] == ["Bob"]
    microsoft.behaviour.statuses = [503, 502]
    with pytest.raises(SourceUnavailable, match="answered 502"):
        await connector.search(conn, query())


async def test_microsoft_pages_through_contacts_and_compares_normalised_numbers(google, microsoft, http) -> None:
    microsoft.add_contact("Nobody", mobile="+1 212 555 0199")
    microsoft.add_contact("Carol", business=["+49 30 1234567"])
    microsoft.add_contact("Dan Office", business=["+1 (415) 555-0123"], company="Acme", email="dan@acme.com")
    microsoft.add_contact("Erin Home", home=["415.555.0123", "not a number"], mobile="650 253 0000")
    microsoft.add_contact("Fay", mobile=None)
    tokens = Tokens()
    conn = connect(microsoft, tokens, ContactSource.microsoft)
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.microsoft]
    matches = await connector.search(conn, query())
    assert [(m.name, m.company, m.email) for m in matches] == [("Dan Office", "Acme", "dan@acme.com"), ("Erin Home", None, None)]
    assert matches[1].phone_numbers == [ContactPhone(number="+16502530000", label="mobile"), ContactPhone(number=ANN, label="home")]
    assert len(microsoft.api_requests) == 3
    first = microsoft.api_requests[0]["params"]
    assert first["$top"] == "2" and set(first["$select"].split(",")) >= {"displayName", "businessPhones", "homePhones", "mobilePhone"}


async def test_microsoft_next_link_to_another_host_is_not_followed(google, microsoft, http) -> None:
    for i in range(3):
        microsoft.add_contact(f"P{i}", mobile=f"+1 212 555 01{i:02d}")
    microsoft.next_link_base = "http://127.0.0.2:9"
    tokens = Tokens()
    conn = connect(microsoft, tokens, ContactSource.microsoft)
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.microsoft]
    with pytest.raises(SourceUnavailable, match="another host"):
        await connector.search(conn, query())
    assert len(microsoft.api_requests) == 1


async def test_microsoft_rotated_refresh_tokens_are_kept(google, microsoft, http) -> None:
    tokens = Tokens()
    conn = connect(microsoft, tokens, ContactSource.microsoft, fresh=False)
    microsoft.rotate_refresh_tokens = True
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.microsoft]
    await connector.search(conn, query())
    assert microsoft.token_requests[0]["scope"] == "offline_access https://graph.microsoft.com/Contacts.Read"
    stored = await tokens.get("acc-1", ContactSource.microsoft)
    assert stored.refresh_token.get_secret_value() == "refresh-1"


async def test_without_an_oauth_client_a_connector_cannot_refresh(google, microsoft, http) -> None:
    tokens = Tokens()
    conn = connect(google, tokens, ContactSource.google, fresh=False)
    settings = settings_for(google, microsoft, google_client_id=None, google_client_secret=None)
    connector = build_connectors(settings, http, tokens)[ContactSource.google]
    with pytest.raises(NotConfigured):
        await connector.search(conn, query())


async def test_concurrent_lookups_refresh_an_expired_token_once(google, microsoft, http) -> None:
    google.add_person("Ann", (ANN, ANN))
    tokens = Tokens()
    conn = connect(google, tokens, ContactSource.google, fresh=False)
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.google]
    results = await asyncio.gather(*(connector.search(conn, query()) for _ in range(5)))
    assert all(r[0].name == "Ann" for r in results)
    assert len(google.token_requests) == 1


async def test_a_slow_source_is_reported_unavailable_and_the_others_answer(google, microsoft, http) -> None:
    google.add_person("Ann", (ANN, ANN))
    microsoft.add_contact("Bob", mobile=ANN)
    microsoft.behaviour.stall = True
    tokens = Tokens()
    connect(google, tokens, ContactSource.google)
    connect(microsoft, tokens, ContactSource.microsoft)

    class NoNatives:
        async def find_by_number(self, account_id, e164, *, limit):
            return []

    connectors = build_connectors(settings_for(google, microsoft), http, tokens)
    finder = ContactFinder(NoNatives(), tokens, connectors, LookupCache(0, 1), source_timeout=0.5, max_matches=10)
    result = await finder.find("acc-1", ANN, "US", budget=10)
    assert [(m.name, m.source) for m in result.contacts] == [("Ann", ContactSource.google)]
    assert result.unavailable_sources == [ContactSource.microsoft]


async def test_no_token_or_number_reaches_logs_or_spans(google, microsoft, http, caplog, spans) -> None:
    caplog.set_level(logging.DEBUG)
    spans.clear()
    google.add_person("Ann", (ANN, ANN))
    tokens = Tokens()
    conn = connect(google, tokens, ContactSource.google)
    google.expire_access_tokens()
    google.behaviour.statuses = [503]
    connector = build_connectors(settings_for(google, microsoft), http, tokens)[ContactSource.google]
    await connector.search(conn, query())
    secrets = ["refresh-acc-1", "client-secret", "4155550123", *google.access_tokens, "seeded-acc-1"]
    sources = [s for s in spans.get_finished_spans() if "switchboard.contact_source" in (s.attributes or {})]
    assert {s.attributes["url.path"] for s in sources} == {"/v1/people:searchContacts", "/token"}
    recorded = caplog.text + " ".join(str(dict(s.attributes or {})) + s.name for s in sources)
    assert not [s for s in secrets if s in recorded]
