"""Call-control's HTTP API (port 9502 by default).

- `POST /webhooks/v1/call-events`: a PBX reports `call.started` / `call.ended`. Authenticated with
  the webhook secret: `X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, or, for a
  PBX that cannot sign, `X-Switchboard-Webhook-Secret: <secret>`; both compared in constant time.
- `/admin/v1/accounts/{account_id}/...`: transfer rules and the state of a call. Admin token.
- `/pbx/v1/calls...`: the simulated PBX, only when it is the configured phone system. Admin token:
  it stands for a phone network a person or the demo drives, not for a caller.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Annotated
from uuid import uuid4

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError
from switchboard.admin import require_admin
from switchboard.contracts import utcnow
from switchboard.contracts.call_control import CallEnded, CallStarted, CallState, TransferTarget
from switchboard.contracts.envelope import CALL_ID, IDENTIFIER
from switchboard.phone import mask

from call_control_svc.destinations import DestinationRules
from call_control_svc.events import CallFacts
from call_control_svc.handlers import report_call_event
from call_control_svc.model import CallPolicy, CallRecord
from call_control_svc.repository import Calls, Rules
from call_control_svc.simulated import SimulatedCall, SimulatedPbx

WEBHOOK_MAX_BYTES = 16_384
SIGNATURE_HEADER = "X-Switchboard-Signature"
SECRET_HEADER = "X-Switchboard-Webhook-Secret"

CallEvent = Annotated[CallStarted | CallEnded, Field(discriminator="event")]
_call_event: TypeAdapter[CallStarted | CallEnded] = TypeAdapter(CallEvent)

AccountId = Annotated[str, Path(pattern=IDENTIFIER, description="The account that owns the call.")]
CallId = Annotated[
    str,
    Path(
        pattern=CALL_ID,
        description="The call id, percent-encoded: a SIP Call-ID may hold `@`, `/`, `?`, quotes and the like.",
    ),
]
AccountQuery = Annotated[str, Query(pattern=IDENTIFIER, description="The account that owns the call.")]


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class EventAccepted(View):
    event: str
    account_id: str
    call_id: str
    recorded: bool = Field(description="False when this event had already been applied (a repeat is harmless).")
    state: CallState


class ActionView(View):
    id: str
    attempt: int
    kind: str
    status: str
    destination: str | None
    destination_kind: str | None
    extension: str | None = Field(description="Digits dialled once the destination answers.")
    target: TransferTarget | None
    failure: str | None
    claimed_at: datetime
    finished_at: datetime | None


class CallView(View):
    account_id: str
    call_id: str
    state: CallState | None = Field(description="None when only the call's end was reported.")
    persona_id: str | None
    caller_number: str | None = Field(description="Masked: the last two digits.")
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    actions: list[ActionView]


class PlaceCall(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str = Field(pattern=IDENTIFIER)
    call_id: str | None = Field(
        default=None,
        pattern=CALL_ID,
        description="The PBX's id of the call (any visible ASCII, up to 256 characters); generated when absent.",
    )
    persona_id: str = Field(pattern=IDENTIFIER)
    caller_number: str | None = Field(default=None, max_length=64)
    called_number: str | None = Field(default=None, max_length=64)


def webhook_router(calls: Calls, facts: CallFacts, secret: SecretStr | None, policy: CallPolicy) -> APIRouter:
    router = APIRouter(tags=["pbx webhook"])

    @router.post("/webhooks/v1/call-events", response_model=EventAccepted)
    async def call_event(request: Request) -> EventAccepted:
        body = await _bounded_body(request)
        _authenticate(request, body, secret)
        try:
            event = _call_event.validate_json(body)
        except ValidationError as e:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=_describe(e)) from None
        recorded = await report_call_event(event, calls=calls, facts=facts)
        record = await calls.get(event.account_id, event.call_id)
        return EventAccepted(
            event=event.event,
            account_id=event.account_id,
            call_id=event.call_id,
            recorded=recorded,
            state=record.state(utcnow(), policy.abandoned_after),
        )

    return router


def admin_router(calls: Calls, rules: Rules, admin_token: SecretStr | None, policy: CallPolicy) -> APIRouter:
    router = APIRouter(
        prefix="/admin/v1/accounts/{account_id}", tags=["admin"], dependencies=[require_admin(admin_token)]
    )

    @router.get("/transfer-rules", response_model=DestinationRules)
    async def get_rules(account_id: AccountId) -> DestinationRules:
        return await rules.get(account_id)

    @router.put("/transfer-rules", response_model=DestinationRules)
    async def put_rules(account_id: AccountId, body: DestinationRules) -> DestinationRules:
        return await rules.put(account_id, body)

    @router.get("/calls/{call_id:path}", response_model=CallView)
    async def get_call(account_id: AccountId, call_id: CallId) -> CallView:
        record = await calls.get(account_id, call_id)
        if record.call is None and record.end is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No call with this id in this account.")
        return _call_view(record, policy)

    return router


def pbx_router(pbx: SimulatedPbx, calls: Calls, facts: CallFacts, admin_token: SecretStr | None) -> APIRouter:
    router = APIRouter(prefix="/pbx/v1/calls", tags=["simulated pbx"], dependencies=[require_admin(admin_token)])

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=SimulatedCall)
    async def place_call(body: PlaceCall) -> SimulatedCall:
        """A caller rings the account's number and the AI agent answers: the call starts (`call.started`)."""
        call_id = body.call_id or f"sim-{uuid4().hex[:16]}"
        placed = await pbx.place_call(
            account_id=body.account_id,
            call_id=call_id,
            persona_id=body.persona_id,
            caller_number=body.caller_number,
            called_number=body.called_number,
        )
        if placed is None:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=f"Call {call_id} already exists in this account.")
        started = CallStarted(
            account_id=body.account_id,
            call_id=call_id,
            persona_id=body.persona_id,
            caller_number=body.caller_number,
            called_number=body.called_number,
            started_at=placed.started_at,
        )
        await report_call_event(started, calls=calls, facts=facts)
        return placed

    @router.post("/{call_id:path}/hangup", response_model=SimulatedCall)
    async def caller_hangs_up(call_id: CallId, account_id: AccountQuery) -> SimulatedCall:
        """The caller hangs up (`call.ended`). Hanging up a call that already ended changes nothing."""
        outcome = await pbx.caller_hangs_up(account_id, call_id)
        if outcome is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail="The simulated PBX has no call with this id in this account."
            )
        call, was_connected = outcome
        if was_connected:
            ended = CallEnded(account_id=account_id, call_id=call_id, reason="caller_hangup", ended_at=utcnow())
            await report_call_event(ended, calls=calls, facts=facts)
        return call

    @router.get("/{call_id:path}", response_model=SimulatedCall)
    async def get_call(call_id: CallId, account_id: AccountQuery) -> SimulatedCall:
        """What the simulated PBX did with the call: its state and every transfer and hang-up, in order."""
        call = await pbx.get(account_id, call_id)
        if call is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail="The simulated PBX has no call with this id in this account."
            )
        return call

    @router.get("", response_model=list[SimulatedCall])
    async def list_calls(
        account_id: AccountQuery, limit: Annotated[int, Query(ge=1, le=200)] = 50
    ) -> list[SimulatedCall]:
        return await pbx.list(account_id, limit=limit)

    return router


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > WEBHOOK_MAX_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"The body exceeds {WEBHOOK_MAX_BYTES} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > WEBHOOK_MAX_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, detail=f"The body exceeds {WEBHOOK_MAX_BYTES} bytes."
            )
    return bytes(body)


def _authenticate(request: Request, body: bytes, secret: SecretStr | None) -> None:
    if secret is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail="The webhook is disabled: no webhook secret is configured."
        )
    key = secret.get_secret_value().encode()
    signature = request.headers.get(SIGNATURE_HEADER)
    shared = request.headers.get(SECRET_HEADER)
    if signature is not None:
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(signature.strip().lower().encode(), expected.encode()):
            return
    elif shared is not None and hmac.compare_digest(shared.encode(), key):
        return
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=f"A valid {SIGNATURE_HEADER} (sha256=HMAC of the body) or {SECRET_HEADER} header is required.",
    )


def _describe(error: ValidationError) -> str:
    fields = ", ".join(".".join(str(p) for p in err["loc"]) or "body" for err in error.errors()[:5])
    return f"Not a call.started or call.ended event; check: {fields}."


def sign(secret: str, body: bytes) -> str:
    """The signature header value a PBX sends with `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _call_view(record: CallRecord, policy: CallPolicy) -> CallView:
    call, end = record.call, record.end
    return CallView(
        account_id=record.account_id,
        call_id=record.call_id,
        state=record.state(utcnow(), policy.abandoned_after) if call else None,
        persona_id=call.persona_id if call else None,
        caller_number=mask(call.caller_number) if call else None,
        started_at=call.started_at if call else None,
        ended_at=end.ended_at if end else None,
        end_reason=end.reason if end else None,
        actions=[
            ActionView(
                id=a.id,
                attempt=a.attempt,
                kind=a.kind.value,
                status=a.status.value,
                destination=a.destination.number if a.destination else None,
                destination_kind=a.destination.kind if a.destination else None,
                extension=a.destination.extension if a.destination else None,
                target=a.target,
                failure=a.failure,
                claimed_at=a.claimed_at,
                finished_at=a.finished_at,
            )
            for a in record.actions
        ],
    )
