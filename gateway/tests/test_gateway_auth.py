"""API keys, the rate limiter, settings and the texts the model reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from gateway import results
from gateway.auth import KEY_PATTERN, Authenticator, create_key, digest, parse_key_id
from gateway.ratelimit import RateLimiter
from gateway.repository import InMemoryApiKeys
from gateway.settings import DEV_KEY_PEPPER, GatewaySettings, MissingSecret
from switchboard.contracts import utcnow
from switchboard.contracts.call_control import TransferResult
from switchboard.contracts.keys import KeyRevoked
from switchboard.contracts.contacts import ContactLookup
from switchboard.contracts.leads import LeadCreated
from switchboard.contracts.persona import OFFICE_STATUS_TEXT, ApiResponse, Availability, OfficeStatus, OfficeStatusKind

PEPPER = b"unit-test-pepper-0123456789"


async def test_keys_are_random_prefixed_and_stored_only_as_a_hash() -> None:
    store = InMemoryApiKeys()
    first = await create_key(store, PEPPER, "acc-1", "phone bot")
    second = await create_key(store, PEPPER, "acc-1")
    assert first.key != second.key
    assert KEY_PATTERN.match(first.key) and first.key.startswith(f"{first.record.prefix}_")
    assert len(first.key.split("_", 2)[2]) == 43  # 256 random bits, url-safe base64
    stored = await store.find(first.record.key_id)
    assert (
        stored is not None and stored.digest == digest(PEPPER, first.key) and first.key not in stored.model_dump_json()
    )
    assert {r.key_id for r in await store.list("acc-1")} == {first.record.key_id, second.record.key_id}
    assert await store.list("acc-2") == []


async def test_authentication_accepts_the_key_and_nothing_close_to_it() -> None:
    store = InMemoryApiKeys()
    new = await create_key(store, PEPPER, "acc-1")
    auth = Authenticator(store, PEPPER, cache_seconds=30)
    assert (await auth.authenticate(new.key)).account_id == "acc-1"
    assert await auth.authenticate(None) is None
    assert await auth.authenticate("") is None
    assert await auth.authenticate(new.key + "x") is None
    assert await auth.authenticate(new.key[:-1] + ("A" if new.key[-1] != "A" else "B")) is None
    assert await Authenticator(store, b"another-pepper-123456", cache_seconds=0).authenticate(new.key) is None
    assert parse_key_id("sbk_XYZ_abc") is None


async def test_revocation_takes_effect_when_the_cache_expires() -> None:
    store = InMemoryApiKeys()
    new = await create_key(store, PEPPER, "acc-1")
    cached = Authenticator(store, PEPPER, cache_seconds=3600)
    uncached = Authenticator(store, PEPPER, cache_seconds=0)
    assert await cached.authenticate(new.key) is not None
    assert await store.revoke("acc-2", new.record.key_id) is None
    revoked = await store.revoke("acc-1", new.record.key_id)
    assert revoked is not None and revoked.revoked
    assert await uncached.authenticate(new.key) is None
    assert await cached.authenticate(new.key) is not None  # until its cache entry expires


async def test_lookups_are_cached() -> None:
    store = InMemoryApiKeys()
    new = await create_key(store, PEPPER, "acc-1")
    finds = 0
    real_find = store.find

    async def counting_find(key_id):
        nonlocal finds
        finds += 1
        return await real_find(key_id)

    store.find = counting_find  # type: ignore[method-assign]
    auth = Authenticator(store, PEPPER, cache_seconds=30)
    for _ in range(5):
        await auth.authenticate(new.key)
        await auth.authenticate("sbk_0123456789abcdef_" + "x" * 43)
    assert finds == 2


def test_rate_limiter_allows_a_burst_then_the_sustained_rate() -> None:
    now = 0.0
    limiter = RateLimiter(2, 3, clock=lambda: now)
    assert [limiter.acquire("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire("k") == pytest.approx(0.5)
    assert limiter.acquire("other") == 0
    now = 0.5
    assert limiter.acquire("k") == 0
    assert limiter.acquire("k") > 0


def test_the_pepper_is_required_unless_development_is_explicit(monkeypatch) -> None:
    monkeypatch.delenv("SWITCHBOARD_GATEWAY_KEY_PEPPER", raising=False)
    with pytest.raises(MissingSecret, match="SWITCHBOARD_GATEWAY_KEY_PEPPER is not set"):
        GatewaySettings(allow_dev_pepper=False).pepper()
    with pytest.raises(MissingSecret, match="at least 16"):
        GatewaySettings(key_pepper="short").pepper()
    assert GatewaySettings(allow_dev_pepper=True).pepper() == DEV_KEY_PEPPER.encode()
    monkeypatch.setenv("SWITCHBOARD_GATEWAY_KEY_PEPPER", "from-the-environment-123")
    monkeypatch.setenv("SWITCHBOARD_GATEWAY_TOOL_TIMEOUTS", '{"lookup_contact": 6}')
    monkeypatch.setenv("SWITCHBOARD_GATEWAY_PORT", "9555")
    settings = GatewaySettings()
    assert settings.pepper() == b"from-the-environment-123"
    assert settings.timeout_for("lookup_contact") == 6 and settings.timeout_for("hangup_call") == settings.tool_timeout
    assert settings.port == 9555 and settings.mongo_database == "gateway" and not settings.tls


def test_tls_needs_both_certificate_and_key() -> None:
    with pytest.raises(ValueError, match="TLS_KEYFILE"):
        GatewaySettings(tls_certfile="/tmp/cert.pem")
    assert GatewaySettings(tls_certfile="/tmp/c.pem", tls_keyfile="/tmp/k.pem").tls


@pytest.mark.parametrize("kind", list(OfficeStatusKind))
def test_office_status_text_is_exactly_the_contract_sentence(kind) -> None:
    status = OfficeStatus(status=kind, text="whatever", local_time=datetime(2026, 1, 1, tzinfo=UTC), timezone="UTC")
    answer = results.success(status)
    assert answer.content[0].text == OFFICE_STATUS_TEXT[kind]
    assert answer.structured_content["status"] == kind.value and not answer.is_error


def test_texts_for_the_model() -> None:
    dnd = Availability(
        user_id="u1", name="Bo", available=False, dnd=True, dnd_until=datetime(2026, 1, 1, 15, tzinfo=UTC)
    )
    assert results.describe(dnd) == (
        "Bo is on Do Not Disturb until 2026-01-01 15:00 UTC and cannot take a call now.",
        False,
    )
    missing = ContactLookup(phone_number="+14155550100", found=False, contacts=[], unavailable_sources=["google"])
    assert (
        results.describe(missing)[0]
        == "No contact found for +14155550100 (not checked, did not answer in time: google)."
    )
    lead = LeadCreated(lead_id="l1", case_id="c2", lead_existed=True, deduplicable=True)
    assert results.describe(lead)[0] == "This caller already had a lead (l1); case c2 was added to it."
    refused = TransferResult(
        transfer_id="t", accepted=False, destination="+1", destination_kind="e164", message="The call is not active."
    )
    assert results.describe(refused) == ("The call is not active.", True)
    failed = ApiResponse(status_code=503, ok=False, body="down", truncated=False)
    assert results.describe(failed) == ("The request failed with HTTP 503. Response: down", True)


async def test_a_key_revoked_event_refuses_the_key_at_once_whatever_is_cached() -> None:
    store = InMemoryApiKeys()
    new = await create_key(store, PEPPER, "acc-1")
    kept = await create_key(store, PEPPER, "acc-1")
    auth = Authenticator(store, PEPPER, cache_seconds=30)
    assert await auth.authenticate(new.key) is not None
    assert await auth.authenticate(kept.key) is not None
    await store.revoke("acc-1", new.record.key_id)
    assert await auth.authenticate(new.key) is not None  # the cache still holds it

    event = KeyRevoked(account_id="acc-1", key_id=new.record.key_id, revoked_at=utcnow())
    await auth.on_event(event)
    assert await auth.authenticate(new.key) is None
    assert await auth.authenticate(kept.key) is not None


async def test_a_lookup_under_way_when_the_revocation_arrives_does_not_bring_the_key_back() -> None:
    store = InMemoryApiKeys()
    new = await create_key(store, PEPPER, "acc-1")
    auth = Authenticator(store, PEPPER, cache_seconds=30)
    auth.revoke(new.record.key_id)  # the event came before the database write was read
    assert await auth.authenticate(new.key) is None


def test_key_revoked_events_name_a_well_formed_key_id() -> None:
    with pytest.raises(ValidationError):
        KeyRevoked(account_id="acc-1", key_id="not-a-key-id", revoked_at=utcnow())
