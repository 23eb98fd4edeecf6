"""Training data for the churn model: live features from stored history, or an imported CSV.

History features are measured as of each observation date from facts dated by then: usage,
logins, tickets, escalations, NPS and failed payments by when they happened; ARR from the last
recorded MRR change (none yet = missing, never today's ARR); health from a snapshot dated and
computed by then. Every row carries its group (the client; a CSV row is its own group) so
cross-validation keeps a client's observations in one fold.

Imported CSV format ("historical accounts with outcome"): a header row; one column names the
account (default `account_ref`), one holds the outcome (default `churned`: 1/0, yes/no, true/false);
every other column is a feature — numbers are used as numbers, anything else as a category.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session, col, delete, select

from revops_core.csv_input import echo, read_csv
from revops_core.errors import ValidationFailed
from revops_core.params import start_of_day
from revops_cs.models.retention import CsChurnTrainingRow
from revops_cs.services.signals import History

HISTORY_FEATURES: tuple[str, ...] = (
    "usage_30d",
    "usage_change_pct",
    "logins_30d",
    "days_since_login",
    "tickets_30d",
    "urgent_escalations",
    "latest_nps",
    "failed_payments_60d",
    "health_score",
    "tenure_days",
    "arr",
)
TRUE = {"1", "yes", "true", "y", "t"}
FALSE = {"0", "no", "false", "n", "f"}


def features_as_of(h: History, as_of: date) -> dict[str, float | None]:
    """The model's inputs for one client on one date (None = missing, filled at training)."""
    cur, prev = h.usage_window(as_of, 30), h.usage_window(as_of, 30, back=1)
    last = h.last_login(as_of)
    nps = h.latest_nps(as_of)
    health = h.known_health(as_of)
    arr = h.arr_as_of(as_of)
    end = as_of + timedelta(days=1)
    start = h.client.contract_start or h.client.created_at.date()
    return {
        "usage_30d": float(cur),
        "usage_change_pct": 100.0 * (cur - prev) / prev if prev else None,
        "logins_30d": float(h.logins_between(start_of_day(end - timedelta(days=30)), start_of_day(end))),
        "days_since_login": float((as_of - last).days) if last else None,
        "tickets_30d": float(h.tickets_in(as_of, 30)),
        "urgent_escalations": float(len(h.urgent_escalations(as_of))),
        "latest_nps": float(nps[0]) if nps else None,
        "failed_payments_60d": float(len(h.failed_payments_in(as_of, 60))),
        "health_score": health.score if health else None,
        "tenure_days": float(max(0, (as_of - start).days)),
        "arr": arr / 100.0 if arr is not None else None,
    }


def history_rows(
    histories: dict[int, History], observed_until: date, horizon_days: int, months: int
) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """Monthly observations (every 30 days back from observed_until − horizon): rows, churn labels
    and each row's client id (its cross-validation group).

    A client contributes an observation when it was a customer that day (started, not yet
    churned); the label is 1 when it churned within the following `horizon_days`.
    """
    rows: list[dict[str, Any]] = []
    labels: list[int] = []
    groups: list[int] = []
    last_obs = observed_until - timedelta(days=horizon_days)
    for cid, h in histories.items():
        start = h.client.contract_start or h.client.created_at.date()
        churned = h.client.churned_at.date() if h.client.churned_at else None
        for k in range(months):
            obs = last_obs - timedelta(days=30 * k)
            if obs < start or (churned is not None and churned <= obs):
                continue
            rows.append(features_as_of(h, obs))
            labels.append(int(churned is not None and churned <= obs + timedelta(days=horizon_days)))
            groups.append(cid)
    return rows, labels, groups


def parse_label(value: str, line: int, column: str) -> bool:
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValidationFailed(
        f"Line {line}: '{echo(value, 100)}' in column '{column}' is not a churn outcome.",
        field="csv_text",
        hint="Use 1/0, yes/no or true/false for the outcome column.",
    )


def import_csv(
    session: Session, dataset: str, csv_text: str, id_column: str, label_column: str, replace: bool
) -> tuple[int, int, list[str]]:
    """Store the rows; returns (rows, churned, feature columns). Validates everything before writing."""
    table = read_csv(csv_text, field="csv_text")
    header = table.header
    for name, field in ((id_column, "id_column"), (label_column, "label_column")):
        if name not in header:
            raise ValidationFailed(
                f"Column '{name}' is not in the CSV header ({echo(', '.join(header[:12]))}).",
                field=field,
                hint="Name the account and outcome columns as they appear in the header.",
            )
    features = [c for c in header if c not in (id_column, label_column)]
    if not features:
        raise ValidationFailed(
            "The CSV has no feature columns.", field="csv_text", hint="Add feature columns."
        )
    table.raise_first_problem("csv_text")  # all or nothing: extra values, oversize fields
    parsed: list[CsChurnTrainingRow] = []
    seen: set[str] = set()
    for row in table.rows:
        line, rec = row.line, row.values
        ref = (rec.get(id_column) or "").strip()
        if not ref or ref in seen:
            raise ValidationFailed(
                f"Line {line}: account reference '{echo(ref, 100)}' is empty or repeated.",
                field="csv_text",
                hint="Give every row a unique account reference.",
            )
        seen.add(ref)
        label = parse_label(rec.get(label_column) or "", line, label_column)
        values = {c: (rec.get(c) or "").strip() or None for c in features}
        parsed.append(
            CsChurnTrainingRow(dataset=dataset, row_ref=ref, churned=label, features=json.dumps(values))
        )
    if not parsed:
        raise ValidationFailed("The CSV has a header but no rows.", field="csv_text", hint="Add data rows.")
    existing = session.exec(select(CsChurnTrainingRow.row_ref).where(CsChurnTrainingRow.dataset == dataset))
    clash = set(existing) & seen
    if clash and not replace:
        raise ValidationFailed(
            f"Dataset '{dataset}' already holds {len(clash)} of these account references.",
            field="replace",
            hint="Pass replace=true to replace the dataset, or use another dataset name.",
        )
    if replace:
        session.exec(delete(CsChurnTrainingRow).where(col(CsChurnTrainingRow.dataset) == dataset))
    session.add_all(parsed)
    return len(parsed), sum(1 for r in parsed if r.churned), features


def dataset_rows(
    session: Session, dataset: str
) -> tuple[list[dict[str, Any]], list[int], list[int], list[str]]:
    """Rows, labels, groups (one per row: a CSV holds one row per account) and feature columns."""
    rows = list(
        session.exec(
            select(CsChurnTrainingRow)
            .where(CsChurnTrainingRow.dataset == dataset)
            .order_by(col(CsChurnTrainingRow.id))
        )
    )
    feats = [json.loads(r.features) for r in rows]
    columns = list(feats[0]) if feats else []
    return feats, [int(r.churned) for r in rows], list(range(len(rows))), columns
