"""What both connectors share: OAuth refresh-token grants, authorised requests with one refresh on 401,
bounded retries on 429/5xx, and client spans that show no query string (it can hold a phone number).

Nothing here logs or records a token, a phone number or a provider's error description.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from pydantic import SecretStr

from contacts_svc.model import AccessToken, SourceConnection
from switchboard.contracts import utcnow
from switchboard.contracts.contacts import ContactMatch, ContactSource
from switchboard.telemetry import tracer

log = logging.getLogger(__name__)

REAUTHORIZE_ERRORS = frozenset({"invalid_grant"})
"""Token-endpoint errors that mean the account's grant is gone (revoked, expired): only the account
can fix it by connecting again. Anything else (a bad client secret, an outage) is ours or transient."""


class SourceUnavailable(Exception):
    """The source did not give an answer this time. The message is safe to log: no token, no number."""


class ReauthorizationRequired(SourceUnavailable):
    """The account's grant was refused; the source stays unavailable until the account reconnects it."""


class NotConfigured(SourceUnavailable):
    """This service has no OAuth client for the provider."""


@dataclass(frozen=True)
class SearchQuery:
    account_id: str
    e164: str
    region: str | None
    deadline: float
    """Event-loop time after which the answer is of no use."""


class Connector(Protocol):
    source: ContactSource

    async def search(self, connection: SourceConnection, query: SearchQuery) -> list[ContactMatch]:
        """Contacts holding exactly `query.e164`, or raises SourceUnavailable."""

    async def verify(self, connection: SourceConnection) -> AccessToken:
        """Redeem the connection's refresh token once, proving the grant works."""

    async def warm_up(self, connection: SourceConnection) -> None:
        """Prepare the source for searches right after it was connected (may do nothing)."""


class TokenStore(Protocol):
    async def get(self, account_id: str, source: ContactSource) -> SourceConnection | None: ...
    async def store_token(self, connection: SourceConnection, token: AccessToken) -> None: ...
    async def mark_unauthorized(self, connection: SourceConnection, reason: str) -> None: ...


async def send(http: httpx.AsyncClient, source: ContactSource, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One HTTP exchange under a client span that records host and path only."""
    target = httpx.URL(url)
    with (
        suppress_http_instrumentation(),
        tracer.start_as_current_span(
            f"{method} {target.host}",
            kind=trace.SpanKind.CLIENT,
            record_exception=False,
            set_status_on_exception=False,
        ) as span,
    ):
        span.set_attribute("http.request.method", method)
        span.set_attribute("server.address", target.host)
        span.set_attribute("url.path", target.path)
        span.set_attribute("switchboard.contact_source", source.value)
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.HTTPError as e:
            span.set_status(trace.StatusCode.ERROR, type(e).__name__)
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            span.set_status(trace.StatusCode.ERROR)
        return response


class TokenEndpoint:
    """An OAuth 2.0 token endpoint, used for the refresh_token grant only."""

    def __init__(
        self,
        source: ContactSource,
        http: httpx.AsyncClient,
        url: str,
        *,
        client_id: str | None,
        client_secret: SecretStr | None,
        extra: dict[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.source = source
        self._http = http
        self._url = url
        self._client_id = client_id
        self._client_secret = client_secret
        self._extra = extra or {}
        self._clock = clock

    @property
    def configured(self) -> bool:
        return self._client_id is not None and self._client_secret is not None

    async def refresh(self, refresh_token: SecretStr) -> AccessToken:
        if self._client_id is None or self._client_secret is None:
            raise NotConfigured(f"{self.source} has no OAuth client configured on this service")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token.get_secret_value(),
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
            **self._extra,
        }
        try:
            response = await send(
                self._http, self.source, "POST", self._url, data=form, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as e:
            raise SourceUnavailable(f"{self.source} token endpoint did not answer ({type(e).__name__})") from None
        body = _json_object(response)
        if response.status_code in (400, 401):
            error = str(body.get("error", "unknown"))[:64]
            if error in REAUTHORIZE_ERRORS:
                raise ReauthorizationRequired(f"{self.source} refused the refresh token ({error})")
            raise SourceUnavailable(f"{self.source} token endpoint refused the request ({error})")
        if response.status_code != 200:
            raise SourceUnavailable(f"{self.source} token endpoint answered {response.status_code}")
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise SourceUnavailable(f"{self.source} token endpoint answered without an access token")
        expires_in = body.get("expires_in", 3600)
        try:
            lifetime = max(int(expires_in), 0)
        except (TypeError, ValueError):
            lifetime = 3600
        rotated = body.get("refresh_token")
        return AccessToken(
            value=SecretStr(access_token),
            expires_at=self._clock() + timedelta(seconds=lifetime),
            refresh_token=SecretStr(rotated) if isinstance(rotated, str) and rotated else None,
        )


class OAuthSession:
    """Authorised GETs on behalf of one account's connection.

    A 401 triggers one refresh and one retry. Refreshes of one connection are single-flight within
    the process; across replicas two refreshes may race, which both providers allow (each stores a
    valid token; the last write stays). 429, 5xx and network errors are retried `retries` times,
    honouring Retry-After, but only while the wait still ends before the query's deadline.
    """

    def __init__(
        self,
        source: ContactSource,
        http: httpx.AsyncClient,
        endpoint: TokenEndpoint,
        tokens: TokenStore,
        *,
        retries: int = 1,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.source = source
        self._http = http
        self._endpoint = endpoint
        self._tokens = tokens
        self._retries = retries
        self._clock = clock
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def verify(self, connection: SourceConnection) -> AccessToken:
        return await self._endpoint.refresh(connection.refresh_token)

    async def get_json(
        self, connection: SourceConnection, url: str, params: dict[str, Any] | None, *, deadline: float
    ) -> dict[str, Any]:
        token = connection.usable_token(self._clock()) or await self._refresh(connection, stale=None)
        refreshed = False
        attempt = 0
        while True:
            headers = {"Authorization": f"Bearer {token.get_secret_value()}", "Accept": "application/json"}
            try:
                response = await send(self._http, self.source, "GET", url, params=params, headers=headers)
            except httpx.HTTPError as e:
                if await self._may_retry(attempt, None, deadline):
                    attempt += 1
                    continue
                raise SourceUnavailable(f"{self.source} did not answer ({type(e).__name__})") from None
            status = response.status_code
            if status == 401 and not refreshed:
                token = await self._refresh(connection, stale=token)
                refreshed = True
                continue
            if status in (401, 403):
                reason = f"{self.source} refused the account's access ({status})"
                await self._tokens.mark_unauthorized(connection, reason)
                raise ReauthorizationRequired(reason)
            if status == 429 or status >= 500:
                if await self._may_retry(attempt, response.headers.get("Retry-After"), deadline):
                    attempt += 1
                    continue
                raise SourceUnavailable(f"{self.source} answered {status}")
            if status != 200:
                raise SourceUnavailable(f"{self.source} refused the request ({status})")
            return _json_object(response, strict=True, source=self.source)

    async def _may_retry(self, attempt: int, retry_after: str | None, deadline: float) -> bool:
        if attempt >= self._retries:
            return False
        delay = _seconds(retry_after) if retry_after else 0.05 * 2**attempt
        loop = asyncio.get_running_loop()
        if delay is None or loop.time() + delay >= deadline:
            return False
        await asyncio.sleep(delay)
        return True

    async def _refresh(self, connection: SourceConnection, *, stale: SecretStr | None) -> SecretStr:
        key = f"{connection.account_id}/{connection.source}"
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            latest = await self._tokens.get(connection.account_id, connection.source)
            if latest is None:
                raise SourceUnavailable(f"{self.source} was disconnected")
            current = latest.usable_token(self._clock())
            if current is not None and (stale is None or current.get_secret_value() != stale.get_secret_value()):
                return current
            try:
                token = await self._endpoint.refresh(latest.refresh_token)
            except ReauthorizationRequired as e:
                await self._tokens.mark_unauthorized(latest, str(e))
                raise
            await self._tokens.store_token(latest, token)
            log.info("refreshed the %s access token of account %s", self.source, connection.account_id)
            return token.value


def _seconds(retry_after: str) -> float | None:
    try:
        return max(float(retry_after), 0.0)
    except ValueError:
        return None


def _json_object(response: httpx.Response, *, strict: bool = False, source: ContactSource | None = None) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    if strict:
        raise SourceUnavailable(f"{source} answered with a body that is not a JSON object")
    return {}
