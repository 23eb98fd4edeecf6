"""Retention tools: the churn model — import labelled accounts, train, and score live clients."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import AsOf, Count, Id, Text, require, resolve_as_of
from revops_core.server import Call
from revops_cs.params import OptClient, Top
from revops_cs.services import churn_model
from revops_cs.toolsets import retention as toolset

MAX_CSV = 20_000_000  # characters: the IBM Telco export (7 043 accounts) is ~1 MB, with ample room


@toolset.tool(tier="write", idempotent=False, title="Import/train churn model")
def manage_churn_model(
    call: Call,
    action: Annotated[Literal["import", "train"], Field(description="What to do.")],
    dataset: Annotated[str | None, Text("Dataset (import; train source=dataset).", max_length=100)] = None,
    csv_text: Annotated[
        str | None,
        # Not `Text`: read_csv reports a control character by line and column, not by offset.
        Field(
            min_length=1,
            max_length=MAX_CSV,
            description="import: CSV; header, account, outcome (1/0), features.",
        ),
    ] = None,
    id_column: Annotated[str, Text("import: account column.", max_length=100)] = "account_ref",
    label_column: Annotated[str, Text("import: churn outcome column.", max_length=100)] = "churned",
    replace: Annotated[bool, Field(description="import: replace the dataset.")] = False,
    source: Annotated[
        churn_model.Source, Field(description="train: client history or a dataset.")
    ] = "history",
    horizon_days: Annotated[int, Count("train: label = churned within N days.", ge=7, le=365)] = 90,
    months: Annotated[int, Count("train: monthly observations.", ge=1, le=60)] = 24,
    as_of: AsOf = None,
) -> churn_model.ChurnModelResult:
    """Import labelled accounts (CSV), or train a logistic churn model (CV AUC, lift, Brier)."""
    if action == "import":
        name = require(dataset, "dataset", when="action=import")
        text = require(csv_text, "csv_text", when="action=import")
        imported = churn_model.import_dataset(call.db, name, text, id_column, label_column, replace)
        call.target = f"cs_churn_dataset:{name}"
        call.audit_details.update(rows=imported.rows, churned=imported.churned)
        return churn_model.ChurnModelResult(action=action, imported=imported)
    model = churn_model.train(
        call.db,
        call.tenant,
        call.actor,
        source=source,
        dataset=dataset,
        horizon_days=horizon_days,
        months=months,
        day=resolve_as_of(as_of),
    )
    call.target = f"cs_churn_model:{model.model_id}"
    return churn_model.ChurnModelResult(action=action, model=model)


@toolset.tool(tier="read", title="Predict churn", replaces="manage_churn_model action=predict")
def predict_churn(
    call: Call,
    model_id: Annotated[
        int | None, Id("churn_model", optional="omit for the latest trained on history")
    ] = None,
    client_id: OptClient = None,
    as_of: AsOf = None,
    limit: Top = 50,
) -> churn_model.PredictResult:
    """Churn probability per client from a model trained on history, highest first."""
    return churn_model.predict(
        call.db, call.tenant, model_id=model_id, client_id=client_id, day=resolve_as_of(as_of), limit=limit
    )
