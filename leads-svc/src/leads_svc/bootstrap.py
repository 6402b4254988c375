"""The one place leads-svc's adapters are built and its handlers bound to them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from fastapi import APIRouter

from leads_svc.api import admin_router
from leads_svc.handlers import create_lead
from leads_svc.outbox import EventRelay, LeadEvents
from leads_svc.repository import INDEXES, MongoCases, MongoLeads, MongoOutbox, MongoRelayClaims
from leads_svc.settings import LeadsSettings
from switchboard.contracts import CommandType, Topic
from switchboard.messaging import Handler
from switchboard.service import Component, Runtime, Service

NAME = "leads"


@dataclass(frozen=True)
class Adapters:
    leads: MongoLeads
    cases: MongoCases
    outbox: MongoOutbox
    events: LeadEvents
    settings: LeadsSettings


def adapters(runtime: Runtime) -> Adapters:
    settings = runtime.settings
    if not isinstance(settings, LeadsSettings):
        raise TypeError(f"leads-svc runs with LeadsSettings, not {type(settings).__name__}")
    leads, cases, outbox = MongoLeads(runtime.db), MongoCases(runtime.db), MongoOutbox(runtime.db)
    events = LeadEvents(runtime.events, outbox, leads, cases, timeout=settings.event_publish_timeout)
    return Adapters(leads, cases, outbox, events, settings)


def bootstrap(runtime: Runtime) -> Mapping[CommandType, Handler]:
    a = adapters(runtime)
    return {CommandType.create_lead: partial(create_lead, leads=a.leads, cases=a.cases, events=a.events)}


def routers(runtime: Runtime) -> Sequence[APIRouter]:
    a = adapters(runtime)
    return [admin_router(a.leads, a.cases, a.settings.admin_token)]


def background(runtime: Runtime) -> Sequence[Component]:
    a = adapters(runtime)
    relay = EventRelay(
        a.events,
        a.outbox,
        MongoRelayClaims(runtime.db),
        interval=a.settings.relay_interval,
        grace=a.settings.relay_grace,
    )
    return [relay]


def create_service(settings: LeadsSettings | None = None) -> Service:
    return Service(
        NAME,
        settings or LeadsSettings(),
        topic=Topic.leads_commands,
        indexes=INDEXES,
        bootstrap=bootstrap,
        event_topics=[Topic.lead_events],
        routers=routers,
        background=background,
    )
