"""Feedback rows: record an answer, and the survey scores, sentiment and trends of a period.

Every figure is computed from stored `cs_feedback` rows (sentiment is VADER's compound score, stored
when the answer is collected); survey formulas live in `analytics/surveys.py`, themes and sentiment
in `analytics/sentiment.py`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from statistics import fmean

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_core.models import CoreContact
from revops_core.params import DateRange
from revops_cs.analytics import sentiment, surveys
from revops_cs.models.feedback import CsFeedback
from revops_cs.output import Out
from revops_cs.services.clients import get_client

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""Answers dated before this are refused as typos (the product did not exist)."""


# --------------------------------------------------------------------------- record


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


def check_score(kind: str, score: int | None, comment: str | None) -> None:
    """A score on the kind's scale (none for text, which needs a comment instead)."""
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


def record(
    session: Session,
    *,
    client_id: int,
    kind: str,
    score: int | None,
    comment: str | None,
    feature: str | None,
    contact_id: int | None,
    submitted_at: datetime | None,
    source: str,
) -> CsFeedback:
    """Store one answer with its comment's sentiment; validated before anything is written."""
    check_score(kind, score, comment)
    now = datetime.now(UTC)
    if submitted_at is not None:
        if submitted_at.tzinfo is None or submitted_at < EARLIEST:
            raise ValidationFailed(
                "submitted_at needs a time zone and a year from 2000.",
                field="submitted_at",
                hint="Add Z or +00:00.",
            )
        if submitted_at > now:
            raise ValidationFailed("submitted_at is in the future.", field="submitted_at")
    client = get_client(session, client_id)
    if contact_id is not None:
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
    return row


# --------------------------------------------------------------------------- survey scores


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

    @property
    def answered(self) -> bool:
        return self.nps is not None or bool(self.csat.responses or self.ces.responses)


def _by_kind(rows: Sequence[CsFeedback], kind: str) -> list[int]:
    return [r.score for r in rows if r.kind == kind and r.score is not None]


def survey_scores(rows: Sequence[CsFeedback]) -> Surveys:
    """NPS, CSAT and CES of the given feedback rows."""
    n = surveys.nps(_by_kind(rows, "nps"))
    csat_values, ces_values = _by_kind(rows, "csat"), _by_kind(rows, "ces")
    return Surveys(
        nps=None if n is None else NpsOut.model_validate(n),
        csat=Score(responses=len(csat_values), score=surveys.csat(csat_values)),
        ces=Score(responses=len(ces_values), score=surveys.ces(ces_values)),
    )


def feedback_rows(session: Session, client_id: int | None, window: DateRange) -> list[CsFeedback]:
    """Feedback submitted in the window (of one client, checked to exist), oldest first."""
    query = select(CsFeedback).where(
        col(CsFeedback.submitted_at) >= window.since, col(CsFeedback.submitted_at) < window.until
    )
    if client_id is not None:
        get_client(session, client_id)
        query = query.where(CsFeedback.client_id == client_id)
    return list(session.exec(query.order_by(col(CsFeedback.submitted_at), col(CsFeedback.id))))


def mean(values: Sequence[float]) -> float | None:
    return fmean(values) if values else None


def _sentiments(rows: Sequence[CsFeedback]) -> list[float]:
    return [r.sentiment for r in rows if r.sentiment is not None]


# --------------------------------------------------------------------------- trends and themes


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
                sentiment=mean(_sentiments(chunk)),
            )
        )
    return out


def themes(
    rows: Sequence[CsFeedback], top: int, *, min_mentions: int = 2
) -> list[tuple[ThemeOut, list[CsFeedback]]]:
    """The top comment themes, each with the rows that mention it."""
    commented = [r for r in rows if r.comment]
    found = sentiment.themes([r.comment or "" for r in commented], top=top, min_mentions=min_mentions)
    out = []
    for theme in found:
        members = [commented[i] for i in theme.members]
        score = mean(_sentiments(members))
        out.append((ThemeOut(theme=theme.term, mentions=theme.mentions, sentiment=score), members))
    return out


def analyze(session: Session, client_id: int | None, window: DateRange, top: int) -> FeedbackAnalysis:
    rows = feedback_rows(session, client_id, window)
    scores = _sentiments(rows)
    return FeedbackAnalysis(
        client_id=client_id,
        start_date=window.start,
        end_date=window.end,
        responses=len(rows),
        surveys=survey_scores(rows),
        sentiment=SentimentSummary(comments=len(scores), mean=mean(scores), **sentiment.distribution(scores)),
        by_month=by_month(rows),
        themes=[theme for theme, _ in themes(rows, top)],
    )
