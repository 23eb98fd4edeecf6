"""Sales tools: CRM data around companies and contacts — associations, custom properties, CSV
import, duplicates and merge."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import Confirm, Id, SingleLine, WholeNumber, require
from revops_core.plans import Planned, plan_or_run
from revops_core.server import Call
from revops_sales.models.crm import DealRole, PropertyObject, PropertyType
from revops_sales.services import associations, crm_import, custom_properties, duplicates
from revops_sales.toolsets import crm as toolset

OptCompany = Annotated[
    int | None, Id("company", see="search_companies", optional="contact_company, company_parent")
]
OptContact = Annotated[
    int | None, Id("contact", see="search_contacts", optional="contact_company, deal_contact")
]
OptDeal = Annotated[int | None, Id("deal", see="list_deals", optional="deal_contact")]
OptParent = Annotated[int | None, Id("parent company", see="search_companies", optional="company_parent")]
Role = Annotated[DealRole | None, Field(description="Role on the deal (add).")]
PropertyNameParam = Annotated[
    str, Field(min_length=1, max_length=60, description="Property name (a-z, 0-9, _)."), SingleLine
]
Option = Annotated[str, Field(min_length=1, max_length=100), SingleLine]
MergeEntity = Annotated[duplicates.Entity, Field(description="company or contact.")]


@toolset.tool(tier="write", idempotent=True, title="Link or unlink records")
def update_associations(
    call: Call,
    action: Annotated[Literal["add", "remove"], Field(description="add or remove.")],
    kind: Annotated[
        associations.Kind,
        Field(description="contact_company sets the primary company."),
    ],
    company_id: OptCompany = None,
    contact_id: OptContact = None,
    deal_id: OptDeal = None,
    parent_company_id: OptParent = None,
    role: Role = None,
) -> associations.AssociationOut:
    """Link/unlink a contact's company, a deal's contact (with role) or a company's parent."""
    when = f"kind={kind}"
    if kind == "contact_company":
        return associations.contact_company(
            call.db,
            call.tenant,
            action,
            require(contact_id, "contact_id", when=when),
            require(company_id, "company_id", when=when),
        )
    if kind == "deal_contact":
        return associations.deal_contact(
            call.db,
            call.tenant,
            action,
            require(deal_id, "deal_id", when=when),
            require(contact_id, "contact_id", when=when),
            require(role, "role", when="action=add") if action == "add" else None,
        )
    return associations.company_parent(
        call.db,
        call.tenant,
        action,
        require(company_id, "company_id", when=when),
        require(parent_company_id, "parent_company_id", when=when),
    )


@toolset.tool(tier="write", idempotent=True, title="Define or set a custom property")
def set_custom_property(
    call: Call,
    action: Annotated[
        Literal["define", "set", "clear"],
        Field(description="What to do."),
    ],
    entity: Annotated[PropertyObject, Field(description="Object type.")],
    name: PropertyNameParam,
    value_type: Annotated[PropertyType | None, Field(description="For define.")] = None,
    options: Annotated[list[Option] | None, Field(max_length=50, description="Enum values (define).")] = None,
    record_id: Annotated[int | None, Id("record", optional="set, clear")] = None,
    value: Annotated[
        str | None,
        Field(min_length=1, max_length=500, description="For set; dates YYYY-MM-DD."),
        SingleLine,
    ] = None,
) -> custom_properties.PropertyResult:
    """Define a custom property, or set/clear a record's value (checked by type)."""
    if action == "define":
        return custom_properties.define(
            call.db,
            call.tenant,
            entity=entity,
            name=name,
            kind=require(value_type, "value_type", when="action=define"),
            options=options,
        )
    return custom_properties.set_value(
        call.db,
        call.tenant,
        entity=entity,
        record_id=require(record_id, "record_id", when=f"action={action}"),
        name=name,
        value=require(value, "value", when="action=set") if action == "set" else None,
    )


@toolset.tool(tier="write", idempotent=False, title="Import companies or contacts from CSV")
def import_crm_csv(
    call: Call,
    entity: Annotated[crm_import.Entity, Field(description="company or contact.")],
    csv_text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2_000_000,
            description="CSV with a header. company: name, domain, industry, employees; "
            "contact: email, first_name, last_name, title, company_domain.",
        ),
    ],
    on_duplicate: Annotated[
        crm_import.Policy, Field(description="Existing domain/e-mail: skip or update.")
    ] = "skip",
    dry_run: Annotated[bool, Field(description="Validate only; write nothing.")] = False,
) -> crm_import.ImportOut:
    """Import companies or contacts: good rows kept, bad rows reported by line and column."""
    report = crm_import.import_csv(
        call.db,
        call.tenant,
        entity=entity,
        csv_text=csv_text,
        on_duplicate=on_duplicate,
        dry_run=dry_run,
        progress=lambda done, total: call.progress(done, total, f"{done}/{total} rows"),
    )
    if dry_run or not (report.created or report.updated):
        call.no_change()
    call.audit_details.update(
        created=len(report.created), updated=len(report.updated), errors=len(report.errors)
    )
    return report


@toolset.tool(tier="read", title="Find duplicate records")
def find_duplicates(
    call: Call,
    entity: MergeEntity,
    top: Annotated[int, Field(ge=1, le=200, description="Most groups to return."), WholeNumber] = 20,
) -> duplicates.DuplicatesOut:
    """Likely duplicate companies (domain, name) or contacts (e-mail, name at a company)."""
    return duplicates.find(call.db, call.tenant, entity, top=top)


@toolset.tool(tier="destructive", idempotent=False, title="Merge two records")
def merge_records(
    call: Call,
    entity: MergeEntity,
    survivor_id: Annotated[int, Id("record to keep", see="find_duplicates")],
    loser_id: Annotated[int, Id("record to archive", see="find_duplicates")],
    confirm: Confirm = None,
) -> Planned[duplicates.MergeOut]:
    """Merge a duplicate into the record kept: links move, the duplicate is archived. Plan → confirm."""
    preview, fingerprint = duplicates.plan_merge(
        call.db, call.tenant, entity, survivor_id=survivor_id, loser_id=loser_id
    )
    call.target = f"{'core_company' if entity == 'company' else 'core_contact'}:{survivor_id}"

    def run() -> duplicates.MergeOut:
        done = duplicates.merge(
            call.db, call.tenant, entity, survivor_id=survivor_id, loser_id=loser_id, actor=call.actor
        )
        call.audit_details.update(merge_id=done.merge_id, loser_id=loser_id, moved=done.moved)
        return done

    return plan_or_run(call, confirm=confirm, preview=preview, fingerprint=fingerprint, run=run)
