"""CS toolset `feedback`: survey answers (NPS, CSAT, CES) and free text — record them, analyse them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from revops_core.params import AsOf, Count, End, Id, Start, Text, resolve_as_of
from revops_core.server import Call
from revops_cs.models.feedback import FeedbackKind
from revops_cs.params import ClientId, OptClient
from revops_cs.services import feedback
from revops_cs.services.feedback import FeedbackAnalysis, FeedbackOut
from revops_cs.services.support_metrics import period
from revops_cs.toolsets import feedback as toolset

DEFAULT_DAYS = 365


@toolset.tool(tier="write", idempotent=False, title="Record feedback")
def collect_feedback(
    call: Call,
    client_id: ClientId,
    kind: Annotated[FeedbackKind, Field(description="Survey kind.")],
    score: Annotated[int | None, Count("NPS 0–10, CSAT 1–5, CES 1–7.", le=10)] = None,
    comment: Annotated[str | None, Text("Free text.", max_length=5000)] = None,
    feature: Annotated[str | None, Text("Feature requested.", max_length=100)] = None,
    contact_id: Annotated[int | None, Id("contact")] = None,
    submitted_at: Annotated[
        datetime | None, Field(description="When answered (ISO, with zone); default now.")
    ] = None,
    source: Annotated[str, Text("Channel, e.g. survey, email.", max_length=30)] = "api",
) -> FeedbackOut:
    """Record a survey answer (NPS, CSAT, CES) or free-text feedback with its comment's sentiment."""
    row = feedback.record(
        call.db,
        client_id=client_id,
        kind=kind,
        score=score,
        comment=comment,
        feature=feature,
        contact_id=contact_id,
        submitted_at=submitted_at,
        source=source,
    )
    call.target = f"cs_feedback:{row.id}"
    return FeedbackOut.model_validate(row)


@toolset.tool(tier="read", title="Analyze feedback and sentiment")
def analyze_feedback_sentiment(
    call: Call,
    client_id: OptClient = None,
    start_date: Start = None,
    end_date: End = None,
    as_of: AsOf = None,
    top: Annotated[int, Count("How many themes.", ge=1, le=50)] = 10,
) -> FeedbackAnalysis:
    """NPS (95 % margin of error), CSAT, CES, monthly trend, comment sentiment, themes (default 365 days)."""
    window = period(start_date, end_date, resolve_as_of(as_of), DEFAULT_DAYS)
    return feedback.analyze(call.db, client_id, window, top)
