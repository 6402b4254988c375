"""Connectors to external address books: Google People API and Microsoft Graph contacts."""

from contacts_svc.connectors.base import (
    Connector,
    NotConfigured,
    OAuthSession,
    ReauthorizationRequired,
    SearchQuery,
    SourceUnavailable,
    TokenEndpoint,
)
from contacts_svc.connectors.google import GoogleContacts
from contacts_svc.connectors.microsoft import MicrosoftContacts

__all__ = [
    "Connector",
    "GoogleContacts",
    "MicrosoftContacts",
    "NotConfigured",
    "OAuthSession",
    "ReauthorizationRequired",
    "SearchQuery",
    "SourceUnavailable",
    "TokenEndpoint",
]
