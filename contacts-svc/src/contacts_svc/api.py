"""The admin REST API of contacts-svc (the Portal's back end and seeding scripts), under `/admin/v1`.

Every route needs `Authorization: Bearer <SWITCHBOARD_ADMIN_TOKEN>`. National numbers in writes are
read with the `region` query parameter, else the account's contacts region (`PUT .../settings`);
without either, only international numbers (+..., 00...) are accepted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from contacts_svc.book import ContactBook, ImportReport, Outcome, SourceLinks
from contacts_svc.importing import UnreadableImport, decode, parse_csv, parse_vcards
from contacts_svc.model import Contact, ContactInput, InvalidContact, SourceConnection, SourceStatus, normalise_number, valid_region
from contacts_svc.settings import ContactsSettings
from switchboard.admin import require_admin
from switchboard.contracts.contacts import ContactSource
from switchboard.contracts.envelope import IDENTIFIER
from switchboard.messaging import Conflict, DomainError, InvalidArgument, NotFound, Unavailable
from switchboard.phone import InvalidPhoneNumber

AccountId = Annotated[str, Path(pattern=IDENTIFIER, description="The account the contacts belong to.")]
ContactId = Annotated[str, Path(pattern=IDENTIFIER, description="The contact's id, chosen by the caller.")]
RegionParam = Annotated[
    str | None,
    Query(
        min_length=2,
        max_length=2,
        description="Country (ISO 3166 alpha-2) that national numbers in this request are read with.",
    ),
]

CSV_TYPES = {"text/csv", "application/csv", "text/comma-separated-values"}
VCARD_TYPES = {"text/vcard", "text/x-vcard", "text/directory"}


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PhoneOut(_Out):
    number: str = Field(description="E.164.")
    label: str | None


class ContactOut(_Out):
    id: str
    name: str
    company: str | None
    email: str | None
    phone_numbers: list[PhoneOut]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, contact: Contact) -> ContactOut:
        return cls(
            id=contact.contact_id,
            name=contact.name,
            company=contact.company,
            email=contact.email,
            phone_numbers=[PhoneOut(number=p.number, label=p.label) for p in contact.phones],
            created_at=contact.created_at,
            updated_at=contact.updated_at,
        )


class WriteOut(_Out):
    outcome: Outcome
    contact: ContactOut


class ContactPage(_Out):
    contacts: list[ContactOut]
    next_after: str | None = Field(description="Pass as `after` to read the next page; null on the last page.")


class NumberSearchIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    phone_number: str = Field(min_length=1, max_length=64)
    region: str | None = Field(default=None, min_length=2, max_length=2)
    limit: int = Field(default=100, ge=1, le=500)


class RowErrorOut(_Out):
    row: int = Field(description="CSV: the spreadsheet row (the header is row 1). vCard: the card's position.")
    message: str


class ImportOut(_Out):
    created: int
    updated: int
    unchanged: int
    failed: int
    errors: list[RowErrorOut]
    ignored_columns: list[str]

    @classmethod
    def of(cls, report: ImportReport) -> ImportOut:
        return cls(
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            failed=len(report.errors),
            errors=[RowErrorOut(row=e.row, message=e.message) for e in report.errors],
            ignored_columns=report.ignored_columns,
        )


class AccountSettingsIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str | None = Field(
        min_length=2, max_length=2, description="Country national numbers of this account's admin writes are read with."
    )


class AccountSettingsOut(_Out):
    region: str | None


class ConnectSourceIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    refresh_token: SecretStr = Field(
        min_length=1, max_length=4096, description="The OAuth refresh token from the account's consent (offline access)."
    )


class SourceOut(_Out):
    source: ContactSource
    status: SourceStatus
    connected_at: datetime
    last_error: str | None

    @classmethod
    def of(cls, connection: SourceConnection) -> SourceOut:
        return cls(
            source=connection.source,
            status=connection.status,
            connected_at=connection.connected_at,
            last_error=connection.last_error,
        )


class SourceList(_Out):
    sources: list[SourceOut]


_STATUS = {InvalidArgument: 422, NotFound: 404, Conflict: 409, Unavailable: 503}


def _http_error(error: DomainError) -> HTTPException:
    return HTTPException(status_code=_STATUS.get(type(error), 500), detail=error.message)


def _region(region: str | None) -> str | None:
    try:
        return valid_region(region)
    except ValueError as e:
        raise HTTPException(422, detail=str(e)) from None


def admin_router(book: ContactBook, links: SourceLinks, settings: ContactsSettings) -> APIRouter:
    router = APIRouter(
        prefix="/admin/v1/accounts/{account_id}",
        tags=["contacts admin"],
        dependencies=[require_admin(settings.admin_token)],
    )

    @router.get("/settings", response_model=AccountSettingsOut)
    async def get_settings(account_id: AccountId) -> AccountSettingsOut:
        return AccountSettingsOut(region=await book.region(account_id, None))

    @router.put("/settings", response_model=AccountSettingsOut)
    async def put_settings(account_id: AccountId, body: AccountSettingsIn) -> AccountSettingsOut:
        region = _region(body.region)
        await book.set_region(account_id, region)
        return AccountSettingsOut(region=region)

    async def write(response: Response, account_id: str, contact_id: str | None, body: ContactInput, region: str | None) -> WriteOut:
        try:
            if contact_id is None:
                written = await book.create(account_id, body, await book.region(account_id, _region(region)))
            else:
                written = await book.put(account_id, contact_id, body, await book.region(account_id, _region(region)))
        except InvalidContact as e:
            raise HTTPException(422, detail=str(e)) from None
        except DomainError as e:
            raise _http_error(e) from None
        response.status_code = status.HTTP_201_CREATED if written.outcome is Outcome.created else status.HTTP_200_OK
        return WriteOut(outcome=written.outcome, contact=ContactOut.of(written.contact))

    @router.put("/contacts/{contact_id}", response_model=WriteOut, responses={201: {"model": WriteOut}})
    async def put_contact(
        response: Response, account_id: AccountId, contact_id: ContactId, body: ContactInput, region: RegionParam = None
    ) -> WriteOut:
        """Create or replace the contact with this id: 201 when created, 200 when updated or unchanged."""
        return await write(response, account_id, contact_id, body, region)

    @router.post("/contacts", response_model=WriteOut, status_code=201)
    async def create_contact(
        response: Response, account_id: AccountId, body: ContactInput, region: RegionParam = None
    ) -> WriteOut:
        """Create a contact with a new id (not idempotent: use PUT from scripts that may run twice)."""
        return await write(response, account_id, None, body, region)

    @router.get("/contacts", response_model=ContactPage)
    async def list_contacts(
        account_id: AccountId,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        after: Annotated[str | None, Query(pattern=IDENTIFIER, description="The next_after of the previous page.")] = None,
    ) -> ContactPage:
        contacts = await book.list(account_id, after=after, limit=limit + 1, number=None)
        page = contacts[:limit]
        return ContactPage(
            contacts=[ContactOut.of(c) for c in page],
            next_after=page[-1].contact_id if len(contacts) > limit else None,
        )

    @router.post("/contacts/search", response_model=ContactPage)
    async def search_contacts(account_id: AccountId, body: NumberSearchIn) -> ContactPage:
        """The native contacts holding one number (sent in the body: a number never goes into a URL)."""
        try:
            number = normalise_number(body.phone_number, await book.region(account_id, _region(body.region)))
        except InvalidPhoneNumber as e:
            raise HTTPException(422, detail=str(e)) from None
        contacts = await book.list(account_id, after=None, limit=body.limit, number=number)
        return ContactPage(contacts=[ContactOut.of(c) for c in contacts], next_after=None)

    @router.get("/contacts/{contact_id}", response_model=ContactOut)
    async def get_contact(account_id: AccountId, contact_id: ContactId) -> ContactOut:
        contact = await book.get(account_id, contact_id)
        if contact is None:
            raise HTTPException(404, detail=f"No contact {contact_id!r} in this account.")
        return ContactOut.of(contact)

    @router.delete("/contacts/{contact_id}", status_code=204)
    async def delete_contact(account_id: AccountId, contact_id: ContactId) -> Response:
        if await book.delete(account_id, contact_id) is None:
            raise HTTPException(404, detail=f"No contact {contact_id!r} in this account.")
        return Response(status_code=204)

    @router.post("/contacts/import", response_model=ImportOut)
    async def import_contacts(
        request: Request,
        account_id: AccountId,
        format: Annotated[
            Literal["csv", "vcard"] | None,
            Query(description="csv or vcard; by default taken from the Content-Type (text/csv, text/vcard)."),
        ] = None,
        region: RegionParam = None,
    ) -> ImportOut:
        """Import a CSV or vCard file sent as the raw body. Valid rows are written; each bad row is reported."""
        kind = format or _format_of(request.headers.get("content-type", ""))
        body = await _read_limited(request, settings.import_max_bytes)
        try:
            text = decode(body)
            parse = parse_csv if kind == "csv" else parse_vcards
            parsed = parse(text, max_rows=settings.import_max_rows)
        except UnreadableImport as e:
            raise HTTPException(422, detail=str(e)) from None
        report = await book.import_contacts(account_id, parsed, await book.region(account_id, _region(region)))
        return ImportOut.of(report)

    @router.get("/sources", response_model=SourceList)
    async def list_sources(account_id: AccountId) -> SourceList:
        return SourceList(sources=[SourceOut.of(c) for c in await links.list(account_id)])

    @router.put("/sources/{source}", response_model=SourceOut)
    async def connect_source(account_id: AccountId, source: ContactSource, body: ConnectSourceIn) -> SourceOut:
        """Connect (or reconnect) Google or Microsoft contacts with the account's refresh token.

        The token is checked with the provider first; it is stored, never returned.
        """
        try:
            connection = await links.connect(account_id, source, body.refresh_token)
        except DomainError as e:
            raise _http_error(e) from None
        return SourceOut.of(connection)

    @router.delete("/sources/{source}", status_code=204)
    async def disconnect_source(account_id: AccountId, source: ContactSource) -> Response:
        if not await links.disconnect(account_id, source):
            raise HTTPException(404, detail=f"{source} is not connected for this account.")
        return Response(status_code=204)

    return router


def _format_of(content_type: str) -> Literal["csv", "vcard"]:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in CSV_TYPES:
        return "csv"
    if media in VCARD_TYPES:
        return "vcard"
    raise HTTPException(
        415, detail="Send text/csv or text/vcard, or say which with ?format=csv or ?format=vcard."
    )


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"The file is larger than {limit} bytes; split it.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, detail=f"The file is larger than {limit} bytes; split it.")
        chunks.append(chunk)
    return b"".join(chunks)
