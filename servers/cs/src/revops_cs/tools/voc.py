"""CS toolset `feedback`: voice of the customer — comment themes with quotes, and feature demand."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import AsOf, Count, End, Start, resolve_as_of
from revops_core.server import Call
from revops_cs.output import Out
from revops_cs.params import OptClient
from revops_cs.services import voc
from revops_cs.services.support_metrics import period
from revops_cs.toolsets import feedback as toolset

# view → (default look-back days, default number of items)
DEFAULTS = {"themes": (90, 5), "feature_requests": (365, 20)}


class VocResult(Out):
    view: str = Field(description="View computed.")
    report: voc.VocReport | None = Field(description="themes: themes, detractor reasons, trend.")
    insights: voc.ProductInsights | None = Field(description="feature_requests: demand by feature.")


@toolset.tool(tier="read", title="Voice of the customer report")
def generate_voc_report(
    call: Call,
    view: Annotated[
        Literal["themes", "feature_requests"],
        Field(description="themes (default 90 days) or feature_requests (365 days)."),
    ] = "themes",
    client_id: OptClient = None,
    start_date: Start = None,
    end_date: End = None,
    as_of: AsOf = None,
    top: Annotated[int | None, Count("How many; default 5 themes, 20 features.", ge=1, le=50)] = None,
) -> VocResult:
    """Voice of the customer: comment themes with quotes, or feature requests with the ARR behind them."""
    days, items = DEFAULTS[view]
    window = period(start_date, end_date, resolve_as_of(as_of), days)
    if view == "themes":
        return VocResult(
            view=view, report=voc.voc_report(call.db, client_id, window, top or items), insights=None
        )
    return VocResult(
        view=view, report=None, insights=voc.product_insights(call.db, client_id, window, top or items)
    )
