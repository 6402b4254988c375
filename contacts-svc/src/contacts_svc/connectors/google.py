"""Google People API: `people.searchContacts` over the account's contacts, OAuth refresh at Google's token endpoint.

searchContacts matches prefixes of names, emails, organisations and phone numbers, so every result is
checked again here: only people holding exactly the looked-up number are returned.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from contacts_svc.connectors.base import OAuthSession, SearchQuery, SourceUnavailable
from contacts_svc.model import AccessToken, SourceConnection, normalise_number
from switchboard.contracts.contacts import ContactMatch, ContactPhone, ContactSource
from switchboard.phone import InvalidPhoneNumber


READ_MASK = "names,phoneNumbers,organizations,emailAddresses"
PAGE_SIZE = 30
"""The most searchContacts returns in one page."""
WARM_UP_SECONDS = 5.0


class _Google(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _FieldMetadata(_Google):
    primary: bool = False


class _Name(_Google):
    metadata: _FieldMetadata = _FieldMetadata()
    displayName: str | None = None
    unstructuredName: str | None = None
    givenName: str | None = None
    familyName: str | None = None


class _PhoneNumber(_Google):
    value: str | None = None
    canonicalForm: str | None = None
    type: str | None = None
    formattedType: str | None = None


class _Organization(_Google):
    metadata: _FieldMetadata = _FieldMetadata()
    name: str | None = None


class _EmailAddress(_Google):
    metadata: _FieldMetadata = _FieldMetadata()
    value: str | None = None


class _Person(_Google):
    resourceName: str | None = None
    names: list[_Name] = []
    phoneNumbers: list[_PhoneNumber] = []
    organizations: list[_Organization] = []
    emailAddresses: list[_EmailAddress] = []


class _SearchResult(_Google):
    person: _Person


class _SearchResponse(_Google):
    results: list[_SearchResult] = []


_Primary = TypeVar("_Primary", _Name, _Organization, _EmailAddress)


def _primary(items: list[_Primary]) -> _Primary | None:
    return next((i for i in items if i.metadata.primary), items[0] if items else None)


def person_match(person: _Person, e164: str, region: str | None) -> ContactMatch | None:
    phones: dict[str, ContactPhone] = {}
    for phone in person.phoneNumbers:
        text = phone.canonicalForm or phone.value
        if not text:
            continue
        try:
            number = normalise_number(text, region)
        except InvalidPhoneNumber:
            continue
        label = (phone.type or phone.formattedType or "").strip().lower() or None
        phones.setdefault(number, ContactPhone(number=number, label=label))
    if e164 not in phones:
        return None
    name = _primary(person.names)
    organization = _primary(person.organizations)
    email = _primary(person.emailAddresses)
    company = organization.name if organization and organization.name else None
    display = None
    if name is not None:
        display = name.displayName or name.unstructuredName or " ".join(
            part for part in (name.givenName, name.familyName) if part
        )
    return ContactMatch(
        name=display or company or (email.value if email else None) or e164,
        company=company,
        email=email.value if email and email.value else None,
        phone_numbers=list(phones.values()),
        source=ContactSource.google,
    )


class GoogleContacts:
    source = ContactSource.google

    def __init__(self, session: OAuthSession, api_base: str) -> None:
        self._session = session
        self._search_url = f"{api_base.rstrip('/')}/v1/people:searchContacts"

    async def search(self, connection: SourceConnection, query: SearchQuery) -> list[ContactMatch]:
        data = await self._session.get_json(
            connection,
            self._search_url,
            {"query": query.e164, "readMask": READ_MASK, "pageSize": PAGE_SIZE},
            deadline=query.deadline,
        )
        try:
            response = _SearchResponse.model_validate(data)
        except ValidationError:
            raise SourceUnavailable("google answered with an unexpected search response") from None
        matches = [person_match(r.person, query.e164, query.region) for r in response.results]
        return [m for m in matches if m is not None]

    async def verify(self, connection: SourceConnection) -> AccessToken:
        return await self._session.verify(connection)

    async def warm_up(self, connection: SourceConnection) -> None:
        """Google asks for one empty search before searching, so its search cache is current."""
        deadline = asyncio.get_running_loop().time() + WARM_UP_SECONDS
        await self._session.get_json(connection, self._search_url, {"query": "", "readMask": "names"}, deadline=deadline)
