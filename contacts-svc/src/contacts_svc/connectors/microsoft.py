"""Microsoft Graph: the signed-in user's contacts (`GET /v1.0/me/contacts`), OAuth refresh at the
Microsoft identity platform's token endpoint.

Graph cannot filter contacts by a phone number in whatever form it was typed, so the lookup pages
through the contacts (`$select`ing only what it needs) and compares normalised numbers; it follows
`@odata.nextLink` only on the configured Graph host, so the bearer token never goes elsewhere.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contacts_svc.connectors.base import OAuthSession, SearchQuery, SourceUnavailable
from contacts_svc.model import AccessToken, SourceConnection, normalise_number
from switchboard.contracts.contacts import ContactMatch, ContactPhone, ContactSource
from switchboard.phone import InvalidPhoneNumber

log = logging.getLogger(__name__)

SELECT = "displayName,givenName,surname,companyName,emailAddresses,businessPhones,homePhones,mobilePhone"


class _Graph(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _EmailAddress(_Graph):
    name: str | None = None
    address: str | None = None


class _Contact(_Graph):
    id: str | None = None
    displayName: str | None = None
    givenName: str | None = None
    surname: str | None = None
    companyName: str | None = None
    emailAddresses: list[_EmailAddress] = []
    businessPhones: list[str | None] = []
    homePhones: list[str | None] = []
    mobilePhone: str | None = None


class _ContactPage(_Graph):
    value: list[_Contact] = []
    next_link: str | None = Field(default=None, alias="@odata.nextLink")


def contact_match(contact: _Contact, e164: str, region: str | None) -> ContactMatch | None:
    labelled = [
        *((text, "mobile") for text in [contact.mobilePhone]),
        *((text, "work") for text in contact.businessPhones),
        *((text, "home") for text in contact.homePhones),
    ]
    phones: dict[str, ContactPhone] = {}
    for text, label in labelled:
        if not text:
            continue
        try:
            number = normalise_number(text, region)
        except InvalidPhoneNumber:
            continue
        phones.setdefault(number, ContactPhone(number=number, label=label))
    if e164 not in phones:
        return None
    email = next((e.address for e in contact.emailAddresses if e.address), None)
    name = contact.displayName or " ".join(p for p in (contact.givenName, contact.surname) if p)
    return ContactMatch(
        name=name or contact.companyName or email or e164,
        company=contact.companyName or None,
        email=email,
        phone_numbers=list(phones.values()),
        source=ContactSource.microsoft,
    )


class MicrosoftContacts:
    source = ContactSource.microsoft

    def __init__(self, session: OAuthSession, api_base: str, *, page_size: int, max_pages: int) -> None:
        self._session = session
        self._base = api_base.rstrip("/")
        self._page_size = page_size
        self._max_pages = max_pages

    async def search(self, connection: SourceConnection, query: SearchQuery) -> list[ContactMatch]:
        url = f"{self._base}/v1.0/me/contacts"
        params: dict[str, str | int] | None = {"$select": SELECT, "$top": self._page_size}
        matches: list[ContactMatch] = []
        for _ in range(self._max_pages):
            data = await self._session.get_json(connection, url, params, deadline=query.deadline)
            try:
                page = _ContactPage.model_validate(data)
            except ValidationError:
                raise SourceUnavailable("microsoft answered with an unexpected contacts page") from None
            for contact in page.value:
                match = contact_match(contact, query.e164, query.region)
                if match is not None:
                    matches.append(match)
            if page.next_link is None:
                return matches
            if not page.next_link.startswith(f"{self._base}/"):
                raise SourceUnavailable("microsoft pointed the next page at another host")
            url, params = page.next_link, None
        log.warning(
            "searched only the first %d pages of the microsoft contacts of account %s",
            self._max_pages,
            query.account_id,
        )
        return matches

    async def verify(self, connection: SourceConnection) -> AccessToken:
        return await self._session.verify(connection)

    async def warm_up(self, connection: SourceConnection) -> None:
        return None
