"""The one place call-control's adapters are built and its handlers, routes and event reader wired to them.

`CallControl` builds the adapters once per runtime (the phone system adapter holds a connection
pool the handlers, the HTTP routes and shutdown must share); tests pass their own telephony or
event publisher into the same wiring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from fastapi import APIRouter
from switchboard.contracts import CommandType, Contract, Topic
from switchboard.contracts.call_control import CallEnded, CallStarted, CallTransferred
from switchboard.messaging import Handler
from switchboard.messaging.events import EventConsumer, EventPublisher
from switchboard.service import Component, PerRuntime, Runtime, Service

from call_control_svc import api, handlers, repository, simulated
from call_control_svc.ari import AriTelephony
from call_control_svc.events import CallFacts
from call_control_svc.model import CallPolicy
from call_control_svc.repository import CallRepository, RulesRepository
from call_control_svc.settings import CallControlSettings, TelephonyKind
from call_control_svc.simulated import SimulatedPbx
from call_control_svc.telephony import Telephony

NAME = "call-control"
EVENT_GROUP = "call-control.call-events"

INDEXES = [*repository.INDEXES, *simulated.INDEXES]


@dataclass(frozen=True)
class Adapters:
    settings: CallControlSettings
    calls: CallRepository
    rules: RulesRepository
    telephony: Telephony
    simulator: SimulatedPbx | None
    facts: CallFacts
    policy: CallPolicy


class CallControl(PerRuntime[Adapters]):
    def __init__(self, *, telephony: Telephony | None = None, events: EventPublisher | None = None) -> None:
        super().__init__()
        self._telephony = telephony
        self._events = events

    def bootstrap(self, runtime: Runtime) -> Mapping[CommandType, Handler]:
        a = self.adapters(runtime)
        return {
            CommandType.transfer_call: partial(
                handlers.transfer_call,
                calls=a.calls,
                rules=a.rules,
                telephony=a.telephony,
                facts=a.facts,
                policy=a.policy,
            ),
            CommandType.hangup_call: partial(
                handlers.hangup_call, calls=a.calls, telephony=a.telephony, facts=a.facts, policy=a.policy
            ),
        }

    def routers(self, runtime: Runtime) -> Sequence[APIRouter]:
        a = self.adapters(runtime)
        token = a.settings.admin_token
        routes = [
            api.webhook_router(a.calls, a.facts, a.settings.webhook_secret, a.policy),
            api.admin_router(a.calls, a.rules, token, a.policy),
        ]
        if a.simulator is not None:
            routes.append(api.pbx_router(a.simulator, a.calls, a.facts, token))
        return routes

    def background(self, runtime: Runtime) -> Sequence[Component]:
        a = self.adapters(runtime)

        async def on_event(event: Contract) -> None:
            assert isinstance(event, CallStarted | CallEnded | CallTransferred)
            await handlers.record_call_event(event, calls=a.calls)

        reader = EventConsumer(
            runtime.settings,
            Topic.call_events,
            [CallStarted, CallEnded, CallTransferred],
            on_event,
            group_id=EVENT_GROUP,
            client_id=f"{NAME}-{runtime.settings.instance_id}",
            # What call control announces (transfers, hang-ups, ends the PBX reported) it recorded first.
            skip_producer=NAME,
        )
        return [a.telephony, reader]

    def _build(self, runtime: Runtime) -> Adapters:
        settings = runtime.settings
        if not isinstance(settings, CallControlSettings):
            raise TypeError(f"call-control runs with CallControlSettings, not {type(settings).__name__}")
        telephony = self._telephony or build_telephony(settings, runtime)
        return Adapters(
            settings=settings,
            calls=CallRepository(runtime.db),
            rules=RulesRepository(runtime.db),
            telephony=telephony,
            simulator=telephony if isinstance(telephony, SimulatedPbx) else None,
            facts=CallFacts(self._events or runtime.events),
            policy=CallPolicy(
                default_region=settings.default_region,
                abandoned_after=timedelta(seconds=settings.abandoned_after_seconds),
            ),
        )


def build_telephony(settings: CallControlSettings, runtime: Runtime) -> Telephony:
    if settings.telephony is TelephonyKind.ari:
        assert settings.ari_url and settings.ari_username and settings.ari_password
        return AriTelephony(
            str(settings.ari_url),
            settings.ari_username,
            settings.ari_password.get_secret_value(),
            mode=settings.ari_transfer_mode,
            context=settings.ari_context,
            priority=settings.ari_priority,
            number_endpoint=settings.ari_number_endpoint,
            extension_endpoint=settings.ari_extension_endpoint,
            timeout=settings.ari_timeout_seconds,
        )
    return SimulatedPbx(runtime.db, rejected_destinations=settings.simulated_rejected_destinations)


def create_service(
    settings: CallControlSettings | None = None,
    *,
    telephony: Telephony | None = None,
    events: EventPublisher | None = None,
) -> Service:
    wiring = CallControl(telephony=telephony, events=events)
    return Service(
        NAME,
        settings or CallControlSettings(),
        topic=Topic.call_control_commands,
        indexes=INDEXES,
        bootstrap=wiring.bootstrap,
        event_topics=[Topic.call_events],
        routers=wiring.routers,
        background=wiring.background,
    )
