"""The churn model: import labelled accounts, train and store a logistic model, score live clients.

numpy (through `analytics.churn_model`) is imported only inside `train` and `predict`, so the
server starts without paying for it.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Literal

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_cs.models.retention import CsChurnModel
from revops_cs.output import Out
from revops_cs.services import thresholds
from revops_cs.services.churn_risk import select_clients
from revops_cs.services.churn_training import (
    HISTORY_FEATURES,
    dataset_rows,
    features_as_of,
    history_rows,
    import_csv,
)
from revops_cs.services.signals import live_clients, load_histories

Source = Literal["history", "dataset"]
TOP_COEFFICIENTS = 8  # how many of the largest standardised coefficients a trained model reports


class ImportResult(Out):
    dataset: str = Field(description="Dataset name.")
    rows: int = Field(description="Rows stored.")
    churned: int = Field(description="Rows whose outcome is churned.")
    features: list[str] = Field(description="Feature columns stored.")


class ModelResult(Out):
    model_id: int = Field(description="Stored model id.")
    source: str = Field(description="history or dataset.")
    positives: int = Field(description="Churned observations used.")
    negatives: int = Field(description="Retained observations used.")
    folds: int = Field(description="Cross-validation folds.")
    auc: float = Field(description="Cross-validated ROC AUC.")
    top_decile_lift: float = Field(description="Top-10% churn rate / overall.")
    brier: float = Field(description="CV Brier score.")
    features: list[str] = Field(description="Input columns.")
    top_coefficients: dict[str, float] = Field(description="Top standardised coefficients.")


class ChurnModelResult(Out):
    action: str = Field(description="Action done.")
    imported: ImportResult | None = Field(default=None, description="import: the stored dataset.")
    model: ModelResult | None = Field(default=None, description="train: the model and its CV metrics.")


class Prediction(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    probability: float = Field(description="P(churn within horizon).")


class PredictResult(Out):
    model_id: int = Field(description="Model used.")
    as_of: date = Field(description="As-of date.")
    horizon_days: int = Field(description="Prediction horizon in days.")
    model_auc: float = Field(description="The model's cross-validated AUC.")
    predictions: list[Prediction] = Field(description="Highest first.")


def import_dataset(
    session: Session, dataset: str, csv_text: str, id_column: str, label_column: str, replace: bool
) -> ImportResult:
    rows, churned, features = import_csv(session, dataset, csv_text, id_column, label_column, replace)
    return ImportResult(dataset=dataset, rows=rows, churned=churned, features=features)


def train(
    session: Session,
    tenant: str,
    actor: str,
    *,
    source: Source,
    dataset: str | None,
    horizon_days: int,
    months: int,
    day: date,
) -> ModelResult:
    """Fit on history (monthly observations labelled by churn within the horizon) or on a dataset;
    k-fold AUC, top-decile lift and Brier, the folds grouped by client and stratified by churn.
    Refuses, saying how many labels it has, when too few."""
    cfg = thresholds.load(session, thresholds.ChurnModelConfig)
    if source == "dataset":
        if not dataset:
            raise ValidationFailed("source=dataset needs dataset.", field="dataset", hint="Import one first.")
        rows, labels, groups, columns = dataset_rows(session, dataset)
        if not rows:
            raise NotFound(
                f"No imported dataset '{dataset}'.", field="dataset", hint="Import it with action=import."
            )
    else:
        clients = live_clients(session, tenant, include_churned=True)
        rows, labels, groups = history_rows(load_histories(session, clients), day, horizon_days, months)
        columns = list(HISTORY_FEATURES)
    pos = sum(labels)
    neg = len(labels) - pos
    if pos < cfg.min_positives or neg < cfg.min_negatives:
        raise ValidationFailed(
            f"Too few labels to train: {pos} churned and {neg} retained observations; need at least "
            f"{cfg.min_positives} churned and {cfg.min_negatives} retained.",
            field="source",
            hint="Record more churned clients (churned_at) or more history, import a dataset, or lower "
            "churn_model.min_positives/min_negatives with configure_cs_thresholds.",
            details={"positives": pos, "negatives": neg, "needed": [cfg.min_positives, cfg.min_negatives]},
        )
    from revops_cs.analytics import churn_model

    y = churn_model.labels_vector(labels)
    _, group_y, _ = churn_model.group_labels(groups, y)
    churned_groups = int(group_y.sum())
    retained_groups = len(group_y) - churned_groups
    folds = min(cfg.folds, churned_groups, retained_groups)
    if folds < 2:
        raise ValidationFailed(
            f"Too few clients to cross-validate: {churned_groups} churned and {retained_groups} "
            "retained; need at least 2 of each (a client's observations stay in one fold).",
            field="source",
            hint="Record more churned and retained clients, or import a dataset.",
            details={"churned_clients": churned_groups, "retained_clients": retained_groups},
        )
    metrics = churn_model.cross_validate(rows, columns, y, groups, folds, cfg.l2)
    spec = churn_model.build_encoding(rows, columns)
    fitted = churn_model.fit(churn_model.encode(rows, spec), y, cfg.l2)
    params = {
        "encoding": spec,
        "means": fitted.means.tolist(),
        "stds": fitted.stds.tolist(),
        "coefficients": fitted.coef.tolist(),
        "intercept": fitted.intercept,
    }
    from_history = source == "history"
    model = CsChurnModel(
        source=source,
        dataset=None if from_history else dataset,
        observed_until=day if from_history else None,
        horizon_days=horizon_days if from_history else None,
        l2=cfg.l2,
        folds=folds,
        positives=pos,
        negatives=neg,
        auc=metrics.auc,
        top_decile_lift=metrics.top_decile_lift,
        brier=metrics.brier,
        features=json.dumps(columns),
        params=json.dumps(params),
        trained_by=actor,
    )
    session.add(model)
    session.flush()
    names = churn_model.encoded_names(spec)
    top = sorted(zip(names, fitted.coef.tolist(), strict=True), key=lambda t: -abs(t[1]))[:TOP_COEFFICIENTS]
    return ModelResult(
        model_id=model.id or 0,
        source=source,
        positives=pos,
        negatives=neg,
        folds=folds,
        auc=round(metrics.auc, 4),
        top_decile_lift=round(metrics.top_decile_lift, 3),
        brier=round(metrics.brier, 4),
        features=columns,
        top_coefficients={n: round(c, 4) for n, c in top},
    )


def _model(session: Session, model_id: int | None) -> CsChurnModel:
    """The named model, or the latest one trained on history (the only kind that scores clients)."""
    if model_id is not None:
        model = session.get(CsChurnModel, model_id)
    else:
        latest = select(CsChurnModel).where(CsChurnModel.source == "history")
        model = session.exec(latest.order_by(col(CsChurnModel.id).desc())).first()
    if model is None:
        raise NotFound("No churn model found.", field="model_id", hint="Train one with manage_churn_model.")
    if model.source != "history":
        raise ValidationFailed(
            f"Model {model.id} was trained on imported dataset '{model.dataset}', whose columns are not "
            "measured for live clients.",
            field="model_id",
            hint="Train with source=history to score clients.",
        )
    return model


def predict(
    session: Session, tenant: str, *, model_id: int | None, client_id: int | None, day: date, limit: int
) -> PredictResult:
    """P(churn within the model's horizon) per client, from features measured as of `day`."""
    model = _model(session, model_id)
    params = json.loads(model.params)
    from revops_cs.analytics import churn_model

    fitted = churn_model.Fitted.from_params(params)
    histories = load_histories(session, select_clients(session, tenant, client_id, None))
    rows = [features_as_of(h, day) for h in histories.values()]
    probs = list(fitted.predict(churn_model.encode(rows, params["encoding"]))) if rows else []
    preds = [
        Prediction(client_id=h.client.id or 0, name=h.client.name, probability=round(float(p), 4))
        for h, p in zip(histories.values(), probs, strict=True)
    ]
    preds.sort(key=lambda p: (-p.probability, p.client_id))
    return PredictResult(
        model_id=model.id or 0,
        as_of=day,
        horizon_days=model.horizon_days or 0,
        model_auc=round(model.auc, 4),
        predictions=preds[:limit],
    )
