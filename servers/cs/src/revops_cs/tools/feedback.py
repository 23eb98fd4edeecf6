"""CS toolset `feedback`: Surveys (NPS, CSAT, CES), sentiment, voice of the customer and product insights.

Every figure is computed from stored `cs_feedback` rows (sentiment is VADER's compound score, stored
when the answer is collected); survey formulas live in `analytics/surveys.py`, themes and sentiment in
`analytics/sentiment.py`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from statistics import fmean
from typing import Annotated, Literal

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_core.money import Money, money
from revops_core.server import Call
from revops_cs.analytics import sentiment, surveys
from revops_cs.common import (
    AsOf,
    EndDate,
    OptClient,
    StartDate,
    end_of_day,
    get_client,
    resolve_as_of,
    start_of_day,
)
from revops_cs.models.clients import STAGES, CsClient
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.usage import CsHealthSnapshot
from revops_cs.output import MAX_ID, Out, arg
from revops_cs.tools.support import performance, period
from revops_cs.toolsets import feedback as toolset

Top = Annotated[int, arg("How many themes/items.", ge=1, le=50)]
DEFAULT_DAYS = 365


# --------------------------------------------------------------------------- collect


class FeedbackOut(Out):
    id: int = Field(description="Feedback id.")
    client_id: int = Field(description="Client id.")
    kind: str = Field(description="nps|csat|ces|text.")
    score: int | None = Field(description="Score (null for text).")
    nps_category: str | None = Field(description="promoter|passive|detractor (nps only).")
    sentiment: float | None = Field(description="VADER compound −1..1 of the comment.")
    sentiment_label: str | None = Field(description="positive|neutral|negative.")
    feature: str | None = Field(description="Feature requested (normalised).")
    submitted_at: datetime = Field(description="Submitted (UTC).")


def _check_score(kind: str, score: int | None, comment: str | None) -> None:
    if kind == "text":
        if score is not None:
            raise ValidationFailed(
                "Text feedback has no score.", field="score", hint="Omit score for kind=text."
            )
        if not comment:
            raise ValidationFailed("Text feedback needs a comment.", field="comment", hint="Pass comment.")
        return
    low, high = surveys.SCALES[kind]
    if score is None or not low <= score <= high:
        raise ValidationFailed(
            f"{kind.upper()} scores run {low}–{high}; got {score}.",
            field="score",
            hint=f"Pass an integer score from {low} to {high}.",
        )


@toolset.tool(tier="write", idempotent=False)
def collect_feedback(
    call: Call,
    client_id: Annotated[int, arg("Client id.", ge=1, le=MAX_ID)],  # common.ClientId has no upper bound
    kind: Annotated[Literal["nps", "csat", "ces", "text"], arg("Survey kind.")],
    score: Annotated[int | None, arg("NPS 0–10, CSAT 1–5, CES 1–7.", ge=0, le=10)] = None,
    comment: Annotated[str | None, arg("Free text.", min_length=1, max_length=5000)] = None,
    feature: Annotated[str | None, arg("Feature requested.", min_length=1, max_length=100)] = None,
    contact_id: Annotated[int | None, arg("Respondent contact id.", ge=1, le=MAX_ID)] = None,
    submitted_at: Annotated[datetime | None, arg("When answered (ISO, with zone); default now.")] = None,
    source: Annotated[str, arg("Channel, e.g. survey, email.", min_length=1, max_length=30)] = "api",
) -> FeedbackOut:
    """Record a survey answer (NPS, CSAT, CES) or free-text feedback with its comment's sentiment."""
    _check_score(kind, score, comment)
    now = datetime.now(UTC)
    if submitted_at is not None:
        if submitted_at.tzinfo is None or submitted_at.year < 2000:
            raise ValidationFailed(
                "submitted_at needs a time zone.", field="submitted_at", hint="Add Z or +00:00."
            )
        if submitted_at > now:
            raise ValidationFailed("submitted_at is in the future.", field="submitted_at")
    session = call.db
    client = get_client(session, client_id)
    if contact_id is not None:
        from revops_core.models import CoreContact

        contact = session.get(CoreContact, contact_id)
        if contact is None or contact.company_id != client.company_id:
            raise ValidationFailed(
                f"Contact {contact_id} does not belong to client {client_id}.", field="contact_id"
            )
    compound = sentiment.compound(comment) if comment else None
    row = CsFeedback(
        client_id=client_id,
        contact_id=contact_id,
        kind=kind,
        score=score,
        comment=comment,
        sentiment=compound,
        sentiment_label=sentiment.label(compound) if compound is not None else None,
        feature=" ".join(feature.lower().split()) if feature else None,
        source=source,
        submitted_at=(submitted_at or now).astimezone(UTC),
    )
    session.add(row)
    session.flush()
    call.target = f"cs_feedback:{row.id}"
    return FeedbackOut(
        id=row.id or 0,
        client_id=client_id,
        kind=kind,
        score=score,
        nps_category=surveys.nps_category(score) if kind == "nps" and score is not None else None,
        sentiment=compound,
        sentiment_label=row.sentiment_label,
        feature=row.feature,
        submitted_at=row.submitted_at,
    )


# --------------------------------------------------------------------------- shared analysis


class NpsOut(Out):
    responses: int = Field(description="Answers.")
    promoters: int = Field(description="Scores 9–10.")
    passives: int = Field(description="Scores 7–8.")
    detractors: int = Field(description="Scores 0–6.")
    score: float = Field(description="NPS −100..100.")
    variance: float = Field(description="Per-answer variance p_P + p_D − (p_P − p_D)².")
    margin_of_error: float = Field(description="95 % margin of error, NPS points.")


class Score(Out):
    responses: int = Field(description="Answers.")
    score: float | None = Field(description="CSAT: % of 4–5; CES: mean 1–7; null without answers.")


class Surveys(Out):
    nps: NpsOut | None = Field(description="NPS; null without answers.")
    csat: Score = Field(description="CSAT.")
    ces: Score = Field(description="CES.")


def _by_kind(rows: Sequence[CsFeedback], kind: str) -> list[int]:
    return [r.score for r in rows if r.kind == kind and r.score is not None]


def survey_scores(rows: Sequence[CsFeedback]) -> Surveys:
    """NPS, CSAT and CES of the given feedback rows."""
    n = surveys.nps(_by_kind(rows, "nps"))
    csat_values, ces_values = _by_kind(rows, "csat"), _by_kind(rows, "ces")
    return Surveys(
        nps=None
        if n is None
        else NpsOut(
            responses=n.responses,
            promoters=n.promoters,
            passives=n.passives,
            detractors=n.detractors,
            score=n.score,
            variance=n.variance,
            margin_of_error=n.margin_of_error,
        ),
        csat=Score(responses=len(csat_values), score=surveys.csat(csat_values)),
        ces=Score(responses=len(ces_values), score=surveys.ces(ces_values)),
    )


def feedback_rows(session: Session, client_id: int | None, start: date, end: date) -> list[CsFeedback]:
    query = select(CsFeedback).where(
        col(CsFeedback.submitted_at) >= start_of_day(start), col(CsFeedback.submitted_at) < end_of_day(end)
    )
    if client_id is not None:
        get_client(session, client_id)
        query = query.where(CsFeedback.client_id == client_id)
    return list(session.exec(query.order_by(col(CsFeedback.submitted_at), col(CsFeedback.id))))


def _mean(values: Sequence[float]) -> float | None:
    return fmean(values) if values else None


# --------------------------------------------------------------------------- sentiment analysis


class SentimentSummary(Out):
    comments: int = Field(description="Comments scored.")
    mean: float | None = Field(description="Mean compound score.")
    positive: int = Field(description="Comments ≥ 0.05.")
    neutral: int = Field(description="Comments between.")
    negative: int = Field(description="Comments ≤ −0.05.")


class MonthRow(Out):
    month: str = Field(description="YYYY-MM.")
    responses: int = Field(description="Feedback rows.")
    nps: float | None = Field(description="NPS.")
    csat: float | None = Field(description="CSAT %.")
    ces: float | None = Field(description="CES mean.")
    sentiment: float | None = Field(description="Mean comment sentiment.")


class ThemeOut(Out):
    theme: str = Field(description="Keyword or bigram.")
    mentions: int = Field(description="Comments mentioning it.")
    sentiment: float | None = Field(description="Mean sentiment of those comments.")


class FeedbackAnalysis(Out):
    client_id: int | None = Field(description="Client, or null for the portfolio.")
    start_date: date = Field(description="From.")
    end_date: date = Field(description="Through.")
    responses: int = Field(description="Feedback rows in the period.")
    surveys: Surveys = Field(description="NPS, CSAT, CES.")
    sentiment: SentimentSummary = Field(description="Comment sentiment distribution.")
    by_month: list[MonthRow] = Field(description="Trend by month.")
    themes: list[ThemeOut] = Field(description="Top themes in comments.")


def _sentiment_summary(rows: Sequence[CsFeedback]) -> SentimentSummary:
    scores = [r.sentiment for r in rows if r.sentiment is not None]
    dist = sentiment.distribution(scores)
    return SentimentSummary(comments=len(scores), mean=_mean(scores), **dist)


def _themes(rows: Sequence[CsFeedback], top: int) -> tuple[list[sentiment.Theme], list[CsFeedback]]:
    commented = [r for r in rows if r.comment]
    return sentiment.themes([r.comment or "" for r in commented], top=top), commented


def _theme_out(theme: sentiment.Theme, commented: Sequence[CsFeedback]) -> ThemeOut:
    scores = [commented[i].sentiment for i in theme.members if commented[i].sentiment is not None]
    return ThemeOut(theme=theme.term, mentions=theme.mentions, sentiment=_mean(scores))  # type: ignore[arg-type]


def by_month(rows: Sequence[CsFeedback]) -> list[MonthRow]:
    months: dict[str, list[CsFeedback]] = defaultdict(list)
    for r in rows:
        months[r.submitted_at.strftime("%Y-%m")].append(r)
    out = []
    for month in sorted(months):
        chunk = months[month]
        s = survey_scores(chunk)
        out.append(
            MonthRow(
                month=month,
                responses=len(chunk),
                nps=s.nps.score if s.nps else None,
                csat=s.csat.score,
                ces=s.ces.score,
                sentiment=_mean([r.sentiment for r in chunk if r.sentiment is not None]),  # type: ignore[misc]
            )
        )
    return out


@toolset.tool(tier="read")
def analyze_feedback_sentiment(
    call: Call,
    client_id: OptClient = None,
    start_date: StartDate = None,
    end_date: EndDate = None,
    as_of: AsOf = None,
    top: Top = 10,
) -> FeedbackAnalysis:
    """NPS (95 % margin of error), CSAT, CES, monthly trend, comment sentiment, themes (default 365 days)."""
    start, end = period(start_date, end_date, resolve_as_of(as_of), DEFAULT_DAYS)
    rows = feedback_rows(call.db, client_id, start, end)
    found, commented = _themes(rows, top)
    return FeedbackAnalysis(
        client_id=client_id,
        start_date=start,
        end_date=end,
        responses=len(rows),
        surveys=survey_scores(rows),
        sentiment=_sentiment_summary(rows),
        by_month=by_month(rows),
        themes=[_theme_out(t, commented) for t in found],
    )


# --------------------------------------------------------------------------- voice of the customer


class Quote(Out):
    client: str = Field(description="Client name.")
    kind: str = Field(description="Feedback kind.")
    score: int | None = Field(description="Score.")
    text: str = Field(description="Comment (≤ 300 chars).")
    sentiment: float | None = Field(description="Compound score.")


class VocTheme(ThemeOut):
    quotes: list[Quote] = Field(description="Sample comments, strongest sentiment first.")


class VocReport(Out):
    start_date: date = Field(description="From.")
    end_date: date = Field(description="Through.")
    comments: int = Field(description="Comments analysed.")
    themes: list[VocTheme] = Field(description="Top themes with quotes.")
    detractor_reasons: list[VocTheme] = Field(description="Themes in NPS detractor (0–6) comments.")
    sentiment_trend: list[MonthRow] = Field(description="Monthly trend.")


def _voc_themes(
    rows: Sequence[CsFeedback], top: int, names: dict[int, str], *, min_mentions: int
) -> list[VocTheme]:
    commented = [r for r in rows if r.comment]
    out = []
    for theme in sentiment.themes([r.comment or "" for r in commented], top=top, min_mentions=min_mentions):
        members = sorted(
            (commented[i] for i in theme.members), key=lambda r: (-abs(r.sentiment or 0.0), r.id or 0)
        )
        base = _theme_out(theme, commented)
        quotes = [
            Quote(
                client=names.get(r.client_id, str(r.client_id)),
                kind=r.kind,
                score=r.score,
                text=(r.comment or "")[:300],
                sentiment=r.sentiment,
            )
            for r in members[:2]
        ]
        out.append(VocTheme(**base.model_dump(), quotes=quotes))
    return out


def _voc_report(call: Call, client_id: int | None, start: date, end: date, top: int) -> VocReport:
    rows = feedback_rows(call.db, client_id, start, end)
    names = dict(call.db.exec(select(CsClient.id, CsClient.name)).all())
    detractors = [r for r in rows if r.kind == "nps" and r.score is not None and r.score <= 6]
    return VocReport(
        start_date=start,
        end_date=end,
        comments=sum(1 for r in rows if r.comment),
        themes=_voc_themes(rows, top, names, min_mentions=2),
        # Few detractors per period: a reason named once still matters.
        detractor_reasons=_voc_themes(detractors, top, names, min_mentions=1),
        sentiment_trend=by_month(rows),
    )


# --------------------------------------------------------------------------- product insights


class FeatureDemand(Out):
    feature: str = Field(description="Feature (normalised).")
    requests: int = Field(description="Feedback rows asking for it.")
    clients: int = Field(description="Distinct clients asking.")
    arr: list[Money] = Field(description="Sum of those clients' current ARR, per currency.")


class ProductInsights(Out):
    start_date: date = Field(description="From.")
    end_date: date = Field(description="Through.")
    requests: int = Field(description="Feature requests in the period.")
    features: list[FeatureDemand] = Field(description="By distinct clients, then requests.")


def _product_insights(call: Call, client_id: int | None, start: date, end: date, top: int) -> ProductInsights:
    """Feature requests grouped by feature: requests, distinct clients and the ARR behind them."""
    rows = [r for r in feedback_rows(call.db, client_id, start, end) if r.feature]
    clients = {c.id: c for c in call.db.exec(select(CsClient))}
    by_feature: dict[str, list[CsFeedback]] = defaultdict(list)
    for r in rows:
        by_feature[r.feature or ""].append(r)
    features = []
    for name, items in by_feature.items():
        ids = {r.client_id for r in items}
        arr: dict[str, int] = defaultdict(int)
        for cid in ids:
            arr[clients[cid].currency] += clients[cid].arr_minor
        features.append(
            FeatureDemand(
                feature=name,
                requests=len(items),
                clients=len(ids),
                arr=[money(v, cur) for cur, v in sorted(arr.items())],
            )
        )
    features.sort(key=lambda f: (-f.clients, -f.requests, f.feature))
    return ProductInsights(start_date=start, end_date=end, requests=len(rows), features=features[:top])


class VocResult(Out):
    view: str = Field(description="View computed.")
    report: VocReport | None = Field(default=None, description="themes: themes, detractor reasons, trend.")
    insights: ProductInsights | None = Field(default=None, description="feature_requests: demand by feature.")


@toolset.tool(tier="read")
def generate_voc_report(
    call: Call,
    view: Annotated[
        Literal["themes", "feature_requests"],
        arg("themes (default 90 days) or feature_requests (365 days)."),
    ] = "themes",
    client_id: OptClient = None,
    start_date: StartDate = None,
    end_date: EndDate = None,
    as_of: AsOf = None,
    top: Annotated[int | None, arg("How many; default 5 themes, 20 features.", ge=1, le=50)] = None,
) -> VocResult:
    """Voice of the customer: comment themes with quotes, or feature requests with the ARR behind them."""
    day = resolve_as_of(as_of)
    if view == "themes":
        start, end = period(start_date, end_date, day, 90)
        return VocResult(view=view, report=_voc_report(call, client_id, start, end, top or 5))
    start, end = period(start_date, end_date, day, DEFAULT_DAYS)
    return VocResult(view=view, insights=_product_insights(call, client_id, start, end, top or 20))


# --------------------------------------------------------------------------- overview


class HealthSummary(Out):
    clients_scored: int = Field(description="Live clients with a health snapshot on or before as_of.")
    average: float | None = Field(description="Mean of their latest scores.")
    by_band: dict[str, int] = Field(description="Latest band → clients.")


class CsOverview(Out):
    as_of: date = Field(description="Evaluation date.")
    days: int = Field(description="Look-back window for surveys and SLA.")
    clients: int = Field(description="Live clients.")
    clients_by_stage: dict[str, int] = Field(description="Live clients per lifecycle stage.")
    surveys: Surveys = Field(description="NPS, CSAT, CES in the window.")
    open_tickets: int = Field(description="Tickets open at as_of.")
    first_response_compliance: float | None = Field(description="SLA % in the window.")
    resolution_compliance: float | None = Field(description="SLA % in the window.")
    health: HealthSummary = Field(description="From the latest stored health snapshots.")


def health_summary(session: Session, as_of: date) -> HealthSummary:
    latest = (
        select(CsHealthSnapshot.client_id, func.max(CsHealthSnapshot.as_of).label("d"))
        .where(CsHealthSnapshot.as_of <= as_of)
        .group_by(CsHealthSnapshot.client_id)
        .subquery()
    )
    rows = session.exec(
        select(CsHealthSnapshot.client_id, CsHealthSnapshot.score, CsHealthSnapshot.band, CsHealthSnapshot.id)
        .join(
            latest,
            (CsHealthSnapshot.client_id == latest.c.client_id) & (CsHealthSnapshot.as_of == latest.c.d),
        )
        .join(CsClient, CsClient.id == CsHealthSnapshot.client_id)
        .where(col(CsClient.deleted_at).is_(None))
        .order_by(col(CsHealthSnapshot.id))
    ).all()
    per_client = {cid: (score, band) for cid, score, band, _ in rows}  # later id wins on a same-day tie
    bands: dict[str, int] = defaultdict(int)
    for _, band in per_client.values():
        bands[band] += 1
    return HealthSummary(
        clients_scored=len(per_client),
        average=_mean([s for s, _ in per_client.values()]),
        by_band=dict(sorted(bands.items())),
    )


@toolset.tool(tier="read")
def get_cs_metrics_overview(
    call: Call,
    as_of: AsOf = None,
    days: Annotated[int, arg("Look-back window in days.", ge=7, le=365)] = 90,
) -> CsOverview:
    """One-screen CS overview: clients by stage, NPS/CSAT/CES, open tickets, SLA compliance, health."""

    day = resolve_as_of(as_of)
    start, _ = period(None, day, day, days)
    session = call.db
    stages = dict(
        session.exec(
            select(CsClient.stage, func.count())
            .where(col(CsClient.deleted_at).is_(None))
            .group_by(CsClient.stage)
        ).all()
    )
    support = performance(session, None, start, day, day)
    return CsOverview(
        as_of=day,
        days=days,
        clients=sum(stages.values()),
        clients_by_stage={s: int(stages.get(s, 0)) for s in STAGES} | {k: int(v) for k, v in stages.items()},
        surveys=survey_scores(feedback_rows(session, None, start, day)),
        open_tickets=sum(sum(b.values()) for b in support.backlog.values()),
        first_response_compliance=support.first_response_compliance,
        resolution_compliance=support.resolution_compliance,
        health=health_summary(session, day),
    )
