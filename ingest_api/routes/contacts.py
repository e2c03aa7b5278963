"""Witness contact details: the witness leaves (or takes back) them with their receipt token; supervisors of a case
read those of the case's events, every read audited. See `services.contacts` for the encryption."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest_api.deps import limit_ip, limit_receipt_token
from ingest_api.governance.auth import requires
from ingest_api.governance.policy import Action, Principal
from ingest_api.routes.errors import STAFF, error_responses
from ingest_api.services.contacts import ContactDetails, ContactService

witness_router = APIRouter(prefix="/v1/receipts", tags=["submissions and receipts"],
                           dependencies=[Depends(limit_ip), Depends(limit_receipt_token)],
                           responses=error_responses(404, 410, 429))
staff_router = APIRouter(prefix="/v1/cases", tags=["cases and staff events"], responses=error_responses(*STAFF, 404))
Supervisor = Annotated[Principal, Depends(requires(Action.VIEW_WITNESS_CONTACT))]
NO_STORE = {"Cache-Control": "no-store"}


def get_contacts(request: Request) -> ContactService:
    service: ContactService = request.app.state.contacts
    return service


ContactsDep = Annotated[ContactService, Depends(get_contacts)]


class ContactIn(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=254)
    note: str | None = Field(default=None, max_length=500, description="when or how to reach the witness")
    consent: bool = Field(description="the witness ticked the box agreeing to be contacted about these photos")


class ContactOut(BaseModel):
    submission_id: str
    consented_at: datetime
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    note: str | None = None
    problem: str | None = Field(default=None, description="why these details could not be decrypted")


@witness_router.put("/{token}/contact", status_code=204, responses=error_responses(422))
async def leave_contact(token: str, contact: ContactIn, contacts: ContactsDep) -> Response:
    """Store (or replace) the submission's contact details, encrypted; refused (422) without consent."""
    details = ContactDetails(name=contact.name, phone=contact.phone, email=contact.email, note=contact.note)
    await run_in_threadpool(contacts.store, token=token, details=details, consent=contact.consent)
    return Response(status_code=204, headers=NO_STORE)


@witness_router.delete("/{token}/contact", status_code=204)
async def take_back_contact(token: str, contacts: ContactsDep) -> Response:
    """Delete the submission's contact details (its photos stay); withdrawing the submission deletes them too."""
    await run_in_threadpool(contacts.erase, token=token)
    return Response(status_code=204, headers=NO_STORE)


@staff_router.get("/{case_id}/events/{event_id}/contacts", response_model=list[ContactOut])
async def read_contacts(
    case_id: str, event_id: str, staff: Supervisor, contacts: ContactsDep, response: Response
) -> list[ContactOut]:
    """Contact details of the event's witnesses, for supervisors of a case linked to it (audited)."""
    views = await run_in_threadpool(contacts.for_case_event, actor=staff, case_id=case_id, event_id=event_id)
    response.headers.update(NO_STORE)
    return [
        ContactOut(
            submission_id=view.submission_id,
            consented_at=view.consented_at,
            problem=view.problem,
            **({} if view.details is None else asdict(view.details)),
        )
        for view in views
    ]
