"""Asterisk ARI (REST) adapter: transfer by continuing the channel in the dial plan or redirecting it, hang up
by deleting the channel. Basic auth; success is `204 No Content`; errors carry `{"message": ...}`.

ARI answers, per its Channels REST API:
- `POST /ari/channels/{id}/continue`: 404 channel not found, 409 channel not in a Stasis application,
  412 channel in an invalid state;
- `POST /ari/channels/{id}/redirect?endpoint=`: 400 endpoint missing, 404 channel or endpoint not found,
  409 not in a Stasis application, 412 invalid state, 422 endpoint not of the channel's type;
- `DELETE /ari/channels/{id}`: 400 invalid reason, 404 channel not found;
- `POST /ari/channels/{id}/variable?variable=&value=`: 400 variable missing, 404 channel not found,
  409 not in a Stasis application.

A destination with an extension (`+14155550123;ext=22`) is dialled, then the extension's digits are
sent once the line answers. Once `continue` or `redirect` takes the caller's channel out of the Stasis
application, ARI can no longer act on it (`POST /channels/{id}/dtmf` answers 409), so the dial plan
sends the digits: the adapter sets the channel variable `SWITCHBOARD_DTMF` to them before it
continues the channel (to the empty value when there is no extension, so digits set for an attempt
that failed are never dialled on the next), and the transfer context dials with Asterisk's `D`
option when there are digits, e.g.
`exten => _+X.,1,Dial(PJSIP/${EXTEN}@trunk,,${IF($["${SWITCHBOARD_DTMF}"!=""]?D(ww${SWITCHBOARD_DTMF}))})`.
A redirect hands the call
to another endpoint with no dial plan of ours in between, so in redirect mode a destination with an
extension is refused (the model is told to use the number alone or another destination), never
transferred without it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import quote

import httpx
from switchboard.phone import mask

from call_control_svc.model import Call, Destination
from call_control_svc.settings import AriTransferMode
from call_control_svc.telephony import TelephonyError, TelephonyFailure

log = logging.getLogger(__name__)

DTMF_VARIABLE = "SWITCHBOARD_DTMF"
"""The channel variable that carries the digits to send once the transfer's destination answers."""


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
        if destination.extension and self._mode is not AriTransferMode.dialplan:
            raise TelephonyError(
                TelephonyFailure.rejected,
                f"this phone system cannot dial extension {destination.extension} after a redirect; "
                "transfer to the number without the extension, or to another destination",
            )
        if self._mode is AriTransferMode.dialplan:
            # Always set, empty when there is no extension: a value left from an earlier attempt is never dialled.
            until = time.monotonic() + timeout
            variable = {"variable": DTMF_VARIABLE, "value": destination.extension or ""}
            await self._send("POST", f"/ari/channels/{channel}/variable", variable, timeout=timeout, call=call)
            timeout = until - time.monotonic()
            path = f"/ari/channels/{channel}/continue"
            params = {"context": self._context, "extension": destination.number, "priority": str(self._priority)}
        else:
            path = f"/ari/channels/{channel}/redirect"
            params = {"endpoint": self._endpoints[destination.kind].format(destination=destination.number)}
        await self._send("POST", path, params, timeout=timeout, call=call)
        then = f", then extension {destination.extension}" if destination.extension else ""
        log.info("ARI transferred call %s to %s%s", call.call_id, mask(destination.number), then)

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
