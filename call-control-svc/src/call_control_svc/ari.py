"""Asterisk ARI (REST) adapter: transfer by continuing the channel in the dial plan or redirecting it, hang up
by deleting the channel. Basic auth; success is `204 No Content`; errors carry `{"message": ...}`.

ARI answers, per its Channels REST API:
- `POST /ari/channels/{id}/continue`: 404 channel not found, 409 channel not in a Stasis application,
  412 channel in an invalid state;
- `POST /ari/channels/{id}/redirect?endpoint=`: 400 endpoint missing, 404 channel or endpoint not found,
  409 not in a Stasis application, 412 invalid state, 422 endpoint not of the channel's type;
- `DELETE /ari/channels/{id}`: 400 invalid reason, 404 channel not found.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

import httpx
from switchboard.phone import mask

from call_control_svc.model import Call, Destination
from call_control_svc.settings import AriTransferMode
from call_control_svc.telephony import TelephonyError, TelephonyFailure

log = logging.getLogger(__name__)


class AriTelephony:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        mode: AriTransferMode = AriTransferMode.dialplan,
        context: str = "switchboard-transfer",
        priority: int = 1,
        number_endpoint: str = "PJSIP/{destination}@trunk",
        extension_endpoint: str = "PJSIP/{destination}",
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._auth = httpx.BasicAuth(username, password)
        self._mode = mode
        self._context = context
        self._priority = priority
        self._endpoints = {"e164": number_endpoint, "extension": extension_endpoint}
        self._timeout = timeout
        # Built here, not in start(): commands may arrive before background components start.
        self._client = httpx.AsyncClient(base_url=self._base_url, auth=self._auth, timeout=timeout, transport=transport)
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        """Let requests under way finish (a transfer is not cut in half), refuse new ones, close the client."""
        self._closing = True
        await self._idle.wait()
        await self._client.aclose()

    async def transfer(self, call: Call, destination: Destination, *, timeout: float) -> None:
        channel = quote(call.pbx_channel, safe="")
        if self._mode is AriTransferMode.dialplan:
            path = f"/ari/channels/{channel}/continue"
            params = {"context": self._context, "extension": destination.number, "priority": str(self._priority)}
        else:
            path = f"/ari/channels/{channel}/redirect"
            params = {"endpoint": self._endpoints[destination.kind].format(destination=destination.number)}
        await self._send("POST", path, params, timeout=timeout, call=call)
        log.info("ARI transferred call %s to %s", call.call_id, mask(destination.number))

    async def hangup(self, call: Call, *, timeout: float) -> None:
        path = f"/ari/channels/{quote(call.pbx_channel, safe='')}"
        await self._send("DELETE", path, {"reason": "normal"}, timeout=timeout, call=call)

    async def _send(self, method: str, path: str, params: dict[str, str], *, timeout: float, call: Call) -> None:
        if self._closing:
            raise TelephonyError(TelephonyFailure.unavailable, "call control is shutting down")
        bounded = max(min(timeout, self._timeout), 0.001)
        self._in_flight += 1
        self._idle.clear()
        try:
            response = await self._client.request(method, path, params=params, timeout=bounded)
        except httpx.TimeoutException:
            log.warning("ARI %s for call %s timed out", method, call.call_id)
            raise TelephonyError(TelephonyFailure.unavailable, "the phone system did not answer in time") from None
        except httpx.HTTPError as e:
            log.warning("ARI %s for call %s failed: %s", method, call.call_id, type(e).__name__)
            raise TelephonyError(TelephonyFailure.unavailable, "the phone system cannot be reached") from None
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
        if response.is_success:
            return
        detail = _error_message(response)
        log.warning("ARI %s for call %s answered %s: %s", method, call.call_id, response.status_code, detail)
        raise TelephonyError(_failure_of(response.status_code, detail), detail)


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"].strip():
        return body["message"].strip()[:200]
    return response.reason_phrase or f"HTTP {response.status_code}"


def _failure_of(status: int, detail: str) -> TelephonyFailure:
    if status == 404:
        return TelephonyFailure.rejected if "endpoint" in detail.lower() else TelephonyFailure.gone
    if status in (409, 412):
        return TelephonyFailure.not_controllable
    if status in (400, 422):
        return TelephonyFailure.rejected
    return TelephonyFailure.unavailable
