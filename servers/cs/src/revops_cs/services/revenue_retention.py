"""Revenue retention from monthly MRR rows: NRR, GRR, the MRR bridge, annualised churn and LTV."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_cs.analytics import revenue
from revops_cs.models.clients import CsClient, Tier
from revops_cs.models.expansion import CsMrrMonth
from revops_cs.output import Out
from revops_cs.services import thresholds


class Ltv(Out):
    arpa_minor: int | None = Field(description="Mean MRR in end_month.")
    monthly_revenue_churn: float | None = Field(description="Monthly revenue churn.")
    gross_margin: float = Field(description="Gross margin (config).")
    ltv_minor: int | None = Field(description="ARPA x margin / monthly churn.")
    note: str | None = Field(description="Why LTV is missing, if it is.")


class RetentionResult(Out):
    start_month: date = Field(description="Period start month.")
    end_month: date = Field(description="Period end month.")
    currency: str = Field(description="Currency of the amounts.")
    accounts: int = Field(description="Accounts with start MRR.")
    churned_accounts: int = Field(description="Of those, with no MRR at end.")
    start_mrr_minor: int = Field(description="sum start MRR.")
    end_mrr_minor: int = Field(description="sum end MRR of those accounts.")
    expansion_mrr_minor: int = Field(description="Increases.")
    contraction_mrr_minor: int = Field(description="Decreases (not to 0).")
    churned_mrr_minor: int = Field(description="MRR lost to churn.")
    nrr: float | None = Field(description="NRR (1.0 = 100%).")
    grr: float | None = Field(description="Gross revenue retention, <= 1.")
    annualised_gross_churn: float | None = Field(description="1 − (1 − monthly churn)^12.")
    ltv: Ltv = Field(description="Customer lifetime value.")


def month(d: date, field: str) -> date:
    """`d` when it is the first day of a month (how MRR rows are keyed), else a validation error."""
    if d.day != 1:
        raise ValidationFailed(
            f"{field} {d.isoformat()} is not the first day of a month.", field=field, hint="Use YYYY-MM-01."
        )
    return d


def _mrr(
    session: Session, start: date, end: date, currency: str, tier: Tier | None
) -> tuple[dict[int, int], dict[int, int]]:
    """client id -> MRR in the start month and in the end month."""
    query = select(col(CsMrrMonth.client_id), col(CsMrrMonth.month), col(CsMrrMonth.mrr_minor)).where(
        col(CsMrrMonth.month).in_([start, end]), CsMrrMonth.currency == currency
    )
    if tier is not None:
        query = query.join(CsClient, col(CsClient.id) == CsMrrMonth.client_id).where(CsClient.tier == tier)
    start_map: dict[int, int] = {}
    end_map: dict[int, int] = {}
    for cid, when, mrr in session.exec(query):
        (start_map if when == start else end_map)[cid] = mrr
    return start_map, end_map


def _ltv(end_map: dict[int, int], lost: float, months: int, margin: float) -> Ltv:
    active = [v for v in end_map.values() if v > 0]
    arpa = round(sum(active) / len(active)) if active else None
    monthly = revenue.monthly_rate(lost, months)
    if arpa is None:
        note = "No account has MRR in end_month."
        return Ltv(
            arpa_minor=None, monthly_revenue_churn=monthly, gross_margin=margin, ltv_minor=None, note=note
        )
    if monthly <= 0:
        note = "No revenue churn in the period: LTV = ARPA × margin ÷ 0 is unbounded; widen the period."
        return Ltv(arpa_minor=arpa, monthly_revenue_churn=0.0, gross_margin=margin, ltv_minor=None, note=note)
    return Ltv(
        arpa_minor=arpa,
        monthly_revenue_churn=round(monthly, 6),
        gross_margin=margin,
        ltv_minor=round(revenue.ltv(arpa, margin, monthly)),
        note=None,
    )


def analyse(
    session: Session, start_month: date, end_month: date, currency: str, tier: Tier | None
) -> RetentionResult:
    """The base at start (accounts with MRR > 0) measured at end; new accounts are excluded."""
    start, end = month(start_month, "start_month"), month(end_month, "end_month")
    if end <= start:
        raise ValidationFailed("end_month must be after start_month.", field="end_month", hint="Swap them.")
    start_map, end_map = _mrr(session, start, end, currency, tier)
    if not any(v > 0 for v in start_map.values()):
        raise ValidationFailed(
            f"No MRR rows with a positive amount for {start.isoformat()} ({currency}).",
            field="start_month",
            hint="Record MRR history (cs_mrr_month) or choose another month.",
        )
    r = revenue.retention(start_map, end_map)
    lost = 1 - (r.grr or 0)
    months = (end.year - start.year) * 12 + end.month - start.month
    margin = thresholds.load(session, thresholds.Revenue).gross_margin_pct / 100
    return RetentionResult(
        start_month=start,
        end_month=end,
        currency=currency,
        accounts=r.accounts,
        churned_accounts=r.churned_accounts,
        start_mrr_minor=r.start_mrr,
        end_mrr_minor=r.end_mrr,
        expansion_mrr_minor=r.expansion,
        contraction_mrr_minor=r.contraction,
        churned_mrr_minor=r.churn,
        nrr=r.nrr,
        grr=r.grr,
        annualised_gross_churn=revenue.annualise_monthly(revenue.monthly_rate(lost, months)),
        ltv=_ltv(end_map, lost, months, margin),
    )
