"""The only place contacts-svc builds adapters: repositories, the HTTP client, connectors, the cache.

`Wiring` builds them once per runtime and hands the same instances to the command handler, the
admin API and the background components (cache invalidation by events, closing the HTTP client).
Tests pass their own HTTP client or connectors in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import httpx
from fastapi import APIRouter

from contacts_svc.api import admin_router
from contacts_svc.book import ContactBook, SourceLinks
from contacts_svc.cache import LookupCache
from contacts_svc.connectors import Connector, GoogleContacts, MicrosoftContacts, OAuthSession, TokenEndpoint
from contacts_svc.connectors.base import TokenStore
from contacts_svc.handlers import lookup_contact
from contacts_svc.lookup import ContactFinder
from contacts_svc.outbox import ContactEvents, EventRelay
from contacts_svc.repository import (
    INDEXES,
    AccountSettingsRepository,
    ContactRepository,
    OutboxRepository,
    SourceRepository,
)
from contacts_svc.settings import ContactsSettings
from switchboard.contracts import CommandType, Topic
from switchboard.contracts.contacts import CONTACT_EVENTS, ContactSource
from switchboard.messaging import Handler
from switchboard.messaging.events import EventConsumer
from switchboard.service import Component, PerRuntime, Runtime, Service

NAME = "contacts"


@dataclass(frozen=True)
class Adapters:
    settings: ContactsSettings
    contacts: ContactRepository
    sources: SourceRepository
    account_settings: AccountSettingsRepository
    http: httpx.AsyncClient
    connectors: Mapping[ContactSource, Connector]
    cache: LookupCache
    outbox: OutboxRepository
    events: ContactEvents
    finder: ContactFinder
    book: ContactBook
    links: SourceLinks


def build_connectors(
    settings: ContactsSettings, http: httpx.AsyncClient, sources: TokenStore
) -> dict[ContactSource, Connector]:
    # httpx logs every request URL at INFO, and a Google search URL carries the looked-up number.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))

    def session(source: ContactSource, endpoint: TokenEndpoint) -> OAuthSession:
        return OAuthSession(source, http, endpoint, sources, retries=settings.source_retries)

    google = TokenEndpoint(
        ContactSource.google,
        http,
        settings.google_token_url,
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
    )
    microsoft = TokenEndpoint(
        ContactSource.microsoft,
        http,
        settings.microsoft_token_url,
        client_id=settings.microsoft_client_id,
        client_secret=settings.microsoft_client_secret,
        extra={"scope": settings.microsoft_scope},
    )
    return {
        ContactSource.google: GoogleContacts(session(ContactSource.google, google), settings.google_api_base),
        ContactSource.microsoft: MicrosoftContacts(
            session(ContactSource.microsoft, microsoft),
            settings.microsoft_api_base,
            page_size=settings.microsoft_page_size,
            max_pages=settings.microsoft_max_pages,
        ),
    }


class _ClosesHttp:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._http.aclose()


class Wiring(PerRuntime[Adapters]):
    def __init__(self, *, http: httpx.AsyncClient | None = None) -> None:
        self._http = http
        super().__init__()

    def _build(self, runtime: Runtime) -> Adapters:
        settings = runtime.settings
        assert isinstance(settings, ContactsSettings)
        contacts = ContactRepository(runtime.db)
        sources = SourceRepository(runtime.db)
        account_settings = AccountSettingsRepository(runtime.db)
        http = self._http or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.source_timeout_seconds, connect=settings.http_connect_timeout_seconds),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        connectors = build_connectors(settings, http, sources)
        cache = LookupCache(settings.cache_ttl_seconds, settings.cache_max_entries)
        outbox = OutboxRepository(runtime.db)
        events = ContactEvents(outbox, runtime.events, timeout=settings.event_publish_timeout_seconds)
        finder = ContactFinder(
            contacts,
            sources,
            connectors,
            cache,
            source_timeout=settings.source_timeout_seconds,
            max_matches=settings.max_matches,
        )
        return Adapters(
            settings=settings,
            contacts=contacts,
            sources=sources,
            account_settings=account_settings,
            http=http,
            connectors=connectors,
            cache=cache,
            outbox=outbox,
            events=events,
            finder=finder,
            book=ContactBook(contacts, account_settings, events, cache),
            links=SourceLinks(
                sources, dict(connectors), events, cache, verify_timeout=max(settings.source_timeout_seconds, 5.0)
            ),
        )

    def bootstrap(self, runtime: Runtime) -> Mapping[CommandType, Handler]:
        a = self.adapters(runtime)
        return {
            CommandType.lookup_contact: partial(
                lookup_contact,
                finder=a.finder,
                regions=a.account_settings,
                reply_margin=a.settings.reply_margin_seconds,
            ),
        }

    def routers(self, runtime: Runtime) -> Sequence[APIRouter]:
        a = self.adapters(runtime)
        return [admin_router(a.book, a.links, a.settings)]

    def background(self, runtime: Runtime) -> Sequence[Component]:
        a = self.adapters(runtime)
        invalidation = EventConsumer(
            runtime.settings,
            Topic.contact_events,
            CONTACT_EVENTS,
            a.cache.on_event,
            group_id=None,
            client_id=f"{NAME}-cache-{runtime.settings.instance_id}",
        )
        relay = EventRelay(
            a.events,
            a.outbox,
            interval=a.settings.relay_interval_seconds,
            grace=a.settings.relay_grace_seconds,
        )
        closers: list[Component] = [] if self._http is not None else [_ClosesHttp(a.http)]
        return [*closers, invalidation, relay]


def create_service(settings: ContactsSettings, wiring: Wiring | None = None) -> Service:
    wiring = wiring or Wiring()
    return Service(
        NAME,
        settings,
        topic=Topic.contacts_commands,
        indexes=INDEXES,
        bootstrap=wiring.bootstrap,
        event_topics=[Topic.contact_events],
        routers=wiring.routers,
        background=wiring.background,
    )
