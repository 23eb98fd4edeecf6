"""Voice of the customer: comment themes with quotes and detractor reasons, and feature demand by ARR."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from pydantic import Field
from sqlmodel import Session, select

from revops_core.money import Money, money
from revops_core.params import DateRange
from revops_cs.models.clients import CsClient
from revops_cs.models.feedback import CsFeedback
from revops_cs.output import Out
from revops_cs.services.feedback import MonthRow, ThemeOut, by_month, feedback_rows, themes

QUOTES_PER_THEME = 2
QUOTE_CHARS = 300
DETRACTOR_MAX = 6
"""NPS scores 0–6 are detractors (analytics/surveys.py)."""


class Quote(Out):
    client: str = Field(description="Client name.")
    kind: str = Field(description="Feedback kind.")
    score: int | None = Field(description="Score.")
    text: str = Field(description=f"Comment (≤ {QUOTE_CHARS} chars).")
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


def _voc_themes(
    rows: Sequence[CsFeedback], top: int, names: dict[int, str], *, min_mentions: int
) -> list[VocTheme]:
    out = []
    for theme, members in themes(rows, top, min_mentions=min_mentions):
        strongest = sorted(members, key=lambda r: (-abs(r.sentiment or 0.0), r.id or 0))
        quotes = [
            Quote(
                client=names.get(r.client_id, str(r.client_id)),
                kind=r.kind,
                score=r.score,
                text=(r.comment or "")[:QUOTE_CHARS],
                sentiment=r.sentiment,
            )
            for r in strongest[:QUOTES_PER_THEME]
        ]
        out.append(VocTheme(**theme.model_dump(), quotes=quotes))
    return out


def voc_report(session: Session, client_id: int | None, window: DateRange, top: int) -> VocReport:
    rows = feedback_rows(session, client_id, window)
    names = {cid: name for cid, name in session.exec(select(CsClient.id, CsClient.name)) if cid is not None}
    detractors = [r for r in rows if r.kind == "nps" and r.score is not None and r.score <= DETRACTOR_MAX]
    return VocReport(
        start_date=window.start,
        end_date=window.end,
        comments=sum(1 for r in rows if r.comment),
        themes=_voc_themes(rows, top, names, min_mentions=2),
        # Few detractors per period: a reason named once still matters.
        detractor_reasons=_voc_themes(detractors, top, names, min_mentions=1),
        sentiment_trend=by_month(rows),
    )


def product_insights(session: Session, client_id: int | None, window: DateRange, top: int) -> ProductInsights:
    """Feature requests grouped by feature: requests, distinct clients and the ARR behind them."""
    rows = [r for r in feedback_rows(session, client_id, window) if r.feature]
    by_feature: dict[str, list[CsFeedback]] = defaultdict(list)
    for r in rows:
        by_feature[r.feature or ""].append(r)
    arr_of = {
        cid: (cur, arr)
        for cid, cur, arr in session.exec(select(CsClient.id, CsClient.currency, CsClient.arr_minor))
    }
    features = []
    for name, items in by_feature.items():
        asking = {r.client_id for r in items}
        arr: dict[str, int] = defaultdict(int)
        for cid in asking:
            currency, amount = arr_of[cid]
            arr[currency] += amount
        features.append(
            FeatureDemand(
                feature=name,
                requests=len(items),
                clients=len(asking),
                arr=[money(v, cur) for cur, v in sorted(arr.items())],
            )
        )
    features.sort(key=lambda f: (-f.clients, -f.requests, f.feature))
    return ProductInsights(
        start_date=window.start, end_date=window.end, requests=len(rows), features=features[:top]
    )
