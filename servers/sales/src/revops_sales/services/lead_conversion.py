"""Lead → contact (+ company) + deal, in one transaction.

The contact is the live one with the lead's e-mail when there is one (linked, not duplicated); the
company likewise by domain; the deal goes to the pipeline's first open stage with the lead's source
and campaign (Marketing's attribution reads them from won deals). Replaying a conversion returns the
first one unchanged (`replayed`), so a retried call never makes a second deal.
"""

from __future__ import annotations

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.models import CoreCompany, CoreContact
from revops_core.outputs import Out
from revops_sales.models.deals import SalesDeal
from revops_sales.models.leads import SalesLead
from revops_sales.services import activities, companies, deals, leads, pipelines


class ConversionOut(Out):
    lead_id: int = Field(description="Lead converted.")
    contact_id: int = Field(description="Contact (created or linked).")
    contact_created: bool = Field(description="False: an existing contact with the e-mail was linked.")
    company_id: int | None = Field(description="Company (created or linked), if any.")
    company_created: bool = Field(description="False: linked an existing company, or none.")
    deal_id: int = Field(description="Deal created.")
    stage_id: int = Field(description="Stage the deal starts in.")
    source: str | None = Field(description="Lead source copied to the deal.")
    campaign: str | None = Field(description="Campaign copied to the deal.")
    replayed: bool = Field(description="True: the lead was already converted; nothing changed.")


def _split(name: str) -> tuple[str | None, str | None]:
    first, _, last = name.strip().partition(" ")
    return first or None, last.strip() or None


def _company(session: Session, tenant: str, lead: SalesLead) -> tuple[int | None, bool]:
    """The live company with the lead's domain, else a new one from the lead's company fields."""
    domain = lead.company_domain
    if domain:
        found = session.exec(
            select(CoreCompany).where(
                CoreCompany.tenant == tenant,
                CoreCompany.domain == domain,
                col(CoreCompany.deleted_at).is_(None),
            )
        ).first()
        if found is not None:
            return found.id, False
    if not lead.company_name:
        raise ValidationFailed(
            "The lead has no company name to create the company from.",
            field="create_company",
            hint="Set company_name with save_lead, or pass create_company=false.",
        )
    created = companies.create_company(
        session,
        tenant,
        name=lead.company_name,
        domain=domain,
        industry=lead.industry,
        employees=lead.employees,
    )
    return created.id, True


def convert(
    session: Session,
    tenant: str,
    actor: str,
    lead_id: int,
    *,
    pipeline_id: int,
    deal_name: str | None,
    amount_minor: int,
    currency: str,
    create_company: bool,
) -> ConversionOut:
    lead = leads.get(session, tenant, lead_id)
    if lead.status == "converted" and lead.converted_deal_id and lead.converted_contact_id:
        deal = session.get(SalesDeal, lead.converted_deal_id)
        return ConversionOut(
            lead_id=lead_id,
            contact_id=lead.converted_contact_id,
            contact_created=False,
            company_id=lead.converted_company_id,
            company_created=False,
            deal_id=lead.converted_deal_id,
            stage_id=deal.stage_id if deal else 0,
            source=lead.source,
            campaign=lead.campaign,
            replayed=True,
        )
    pipelines.first_open_stage(session, pipelines.get_pipeline(session, tenant, pipeline_id).id or 0)
    if lead.status == "disqualified":
        raise ValidationFailed(f"Lead {lead_id} is disqualified.", field="lead_id", hint="Reopen it first.")
    if not lead.email:
        raise ValidationFailed(
            f"Lead {lead_id} has no e-mail; a contact needs one.",
            field="lead_id",
            hint="Set email with save_lead.",
        )
    company_id, company_created = _company(session, tenant, lead) if create_company else (None, False)
    contact = session.exec(
        select(CoreContact).where(
            CoreContact.tenant == tenant,
            CoreContact.email == lead.email,
            col(CoreContact.deleted_at).is_(None),
        )
    ).first()
    if contact is None:
        first, last = _split(lead.name)
        contact_id = companies.create_contact(
            session,
            tenant,
            email=lead.email,
            company_id=company_id,
            first_name=first,
            last_name=last,
            title=lead.title,
        ).id
        contact_created = True
    else:
        contact_id, contact_created = contact.id or 0, False
        if contact.company_id is None and company_id is not None:
            contact.company_id = company_id
            session.add(contact)
    deal_out = deals.create(
        session,
        tenant,
        actor,
        pipeline_id=pipeline_id,
        name=deal_name or lead.company_name or lead.name,
        amount_minor=amount_minor,
        currency=currency,
        stage_id=None,
        owner=lead.owner,
        close_date=None,
        company_id=company_id,
    )
    # deals.create takes no source/campaign: set them on the row it just made (same transaction).
    deal = session.get(SalesDeal, deal_out.id)
    assert deal is not None
    deal.source, deal.campaign = lead.source, lead.campaign
    session.add(deal)
    now = utcnow()
    lead.status = "converted"
    lead.converted_contact_id, lead.converted_company_id, lead.converted_deal_id = (
        contact_id,
        company_id,
        deal.id,
    )
    lead.converted_at = lead.updated_at = now
    session.add(lead)
    activities.record(
        session,
        tenant,
        kind="note",
        occurred_at=now,
        owner=lead.owner,
        deal_id=deal.id,
        contact_id=contact_id,
        company_id=company_id,
        subject=f"Converted from lead {lead_id} ({lead.name})",
        source=("sales_lead", lead_id),
    )
    session.flush()
    return ConversionOut(
        lead_id=lead_id,
        contact_id=contact_id,
        contact_created=contact_created,
        company_id=company_id,
        company_created=company_created,
        deal_id=deal.id or 0,
        stage_id=deal.stage_id,
        source=deal.source,
        campaign=deal.campaign,
        replayed=False,
    )
