"""CS toolset `health`: product usage imported from Mixpanel, and client data pushed to its profiles."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from revops_core.errors import ValidationFailed
from revops_core.params import DateRange, Ids, IdValue, Text, require, resolve_as_of
from revops_core.server import Call
from revops_cs.services import mixpanel_import
from revops_cs.toolsets import health as toolset
from revops_cs.vendors import mixpanel

MAX_DAYS = 92  # one export per call stays a bounded download; import longer spans in pieces


@toolset.tool(tier="write", idempotent=True, open_world=True, title="Import Mixpanel usage")
def import_mixpanel_usage(
    call: Call,
    action: Annotated[Literal["import", "push_profiles"], Field(description="What to do.")] = "import",
    from_date: Annotated[date | None, Field(description="import: first day.")] = None,
    to_date: Annotated[date | None, Field(description=f"import: last day (≤{MAX_DAYS} days).")] = None,
    client_property: Annotated[
        str, Text("import: property naming the client.", max_length=100)
    ] = "client_id",
    client_ids: Annotated[list[IdValue] | None, Ids("client", max_items=50, see="list_clients")] = None,
) -> mixpanel_import.MixpanelResult:
    """Import Mixpanel events as usage (deduped; unmapped counted), or push client data to profiles."""
    if action == "push_profiles":
        creds = mixpanel.require_credentials(call.runtime, need_token=True)
        return mixpanel_import.push_profiles(call, creds, client_ids)
    days = DateRange.resolve(
        require(from_date, "from_date", when="action=import"),
        require(to_date, "to_date", when="action=import"),
        start_field="from_date",
        end_field="to_date",
    )
    resolve_as_of(days.end, field="to_date")
    if days.days > MAX_DAYS + 1:
        raise ValidationFailed(
            f"The range is longer than {MAX_DAYS} days.", field="to_date", hint="Import in smaller ranges."
        )
    creds = mixpanel.require_credentials(call.runtime)
    return mixpanel_import.import_events(call, creds, days.start, days.end, client_property)
