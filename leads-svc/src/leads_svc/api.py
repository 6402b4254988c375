"""The admin/read API of leads-svc (the Portal's back end): leads of an account, and their cases.

Every route is under `/v1/accounts/{account_id}` and needs the admin token. Lists are newest
first and paged by cursor: pass a page's `next_cursor` back as `cursor` for the next page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from leads_svc.model import Case, Lead, PhoneSource
from leads_svc.repository import Cases, Leads
from switchboard.admin import require_admin
from switchboard.contracts.envelope import IDENTIFIER
from switchboard.contracts.leads import Classification
from switchboard.phone import InvalidPhoneNumber, to_e164

RECORD_ID = r"^[0-9a-f]{24}$"
MAX_PAGE = 200

AccountId = Annotated[str, Path(pattern=IDENTIFIER)]
LeadId = Annotated[str, Path(pattern=RECORD_ID)]
Cursor = Annotated[str | None, Query(pattern=RECORD_ID, description="`next_cursor` of the previous page.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class CaseView(View):
    id: str
    lead_id: str
    call_id: str
    persona_id: str
    name: str
    intent: str
    classification: Classification
    summary: str | None
    notes: str | None
    callback_number: str | None = Field(
        description="The number the caller asked to be called back on (E.164, `;ext=` if any)."
    )
    created_at: datetime

    @classmethod
    def of(cls, case: Case) -> CaseView:
        return cls(**case.model_dump(include=set(cls.model_fields)))


class LeadView(View):
    id: str
    phone_e164: str | None = Field(
        description=(
            "The lead's number: the caller's, or the callback number the caller gave when theirs was "
            "withheld; none when neither was known."
        )
    )
    phone_source: PhoneSource | None = Field(description="caller_id or callback: where `phone_e164` came from.")
    caller_id: str | None = Field(description="The caller id as received, when it was not a phone number.")
    deduplicable: bool = Field(
        description="False: no number to match later calls on; such a lead is its call's (one per call)."
    )
    name: str = Field(description="The name given on the first call; later calls' names are on their cases.")
    classification: Classification = Field(description="As given on the first call; each case has its own.")
    call_id: str = Field(description="The call that created the lead.")
    persona_id: str
    created_at: datetime
    case_count: int

    @classmethod
    def of(cls, lead: Lead, case_count: int) -> LeadView:
        return cls(**lead.model_dump(include=set(cls.model_fields)), case_count=case_count)


class LeadPage(View):
    items: list[LeadView]
    next_cursor: str | None


class CasePage(View):
    items: list[CaseView]
    next_cursor: str | None


class LeadDetail(View):
    lead: LeadView
    cases: CasePage


def _next_cursor(ids: list[str], limit: int) -> str | None:
    return ids[-1] if len(ids) == limit else None


def admin_router(leads: Leads, cases: Cases, admin_token: SecretStr | None) -> APIRouter:
    router = APIRouter(prefix="/v1/accounts/{account_id}/leads", tags=["leads"], dependencies=[require_admin(admin_token)])

    async def lead_or_404(account_id: str, lead_id: str) -> Lead:
        lead = await leads.get(account_id, lead_id)
        if lead is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"No lead {lead_id} in account {account_id}.")
        return lead

    async def case_page(account_id: str, lead_id: str, cursor: str | None, limit: int) -> CasePage:
        found = await cases.page(account_id, lead_id, before=cursor, limit=limit)
        return CasePage(items=[CaseView.of(c) for c in found], next_cursor=_next_cursor([c.id for c in found], limit))

    @router.get("", response_model=LeadPage, summary="List an account's leads, newest first")
    async def list_leads(
        account_id: AccountId,
        cursor: Cursor = None,
        limit: Limit = 50,
        phone: Annotated[
            str | None, Query(max_length=64, description="Only the lead of this number (any common form).")
        ] = None,
        region: Annotated[
            str | None, Query(pattern=r"^[A-Z]{2}$", description="The country national numbers are read in.")
        ] = None,
    ) -> LeadPage:
        if phone is not None:
            try:
                e164 = to_e164(phone, region)
            except InvalidPhoneNumber as e:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(e)) from None
            lead = await leads.find_by_phone(account_id, e164)
            found = [lead] if lead is not None else []
        else:
            found = await leads.page(account_id, before=cursor, limit=limit)
        counts = await cases.count_by_lead(account_id, [lead.id for lead in found])
        return LeadPage(
            items=[LeadView.of(lead, counts[lead.id]) for lead in found],
            next_cursor=None if phone is not None else _next_cursor([lead.id for lead in found], limit),
        )

    @router.get("/{lead_id}", response_model=LeadDetail, summary="A lead with its newest cases")
    async def get_lead(account_id: AccountId, lead_id: LeadId, cases_limit: Limit = 50) -> LeadDetail:
        lead = await lead_or_404(account_id, lead_id)
        counts = await cases.count_by_lead(account_id, [lead.id])
        return LeadDetail(
            lead=LeadView.of(lead, counts[lead.id]),
            cases=await case_page(account_id, lead.id, None, cases_limit),
        )

    @router.get("/{lead_id}/cases", response_model=CasePage, summary="A lead's cases, newest first")
    async def list_cases(account_id: AccountId, lead_id: LeadId, cursor: Cursor = None, limit: Limit = 50) -> CasePage:
        lead = await lead_or_404(account_id, lead_id)
        return await case_page(account_id, lead.id, cursor, limit)

    return router
