"""The history-trained churn model sees nothing recorded or changed after its observation dates.

A history is built through the tools (clients, MRR, usage, churns), the model is trained from it,
then only facts dated after the last observation change: churned clients' ARR today, their MRR
set to 0 yesterday, new usage in the last 30 days, and health scores computed today for the last
observation date (only live clients get one). Retraining must give the very same model: AUC, lift,
Brier and coefficients. Before the fix the AUC moved (ARR was read as it is today, and a health
score computed after the fact counted as known on its date).

The fold assignment itself (grouped by client, stratified) is tested in test_analytics_churn.py.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from revops_core.testing import call_error, call_ok, connect

pytestmark = pytest.mark.anyio

CLIENTS = 40
CHURNED = [i for i in range(CLIENTS) if i % 10 < 3]  # 12 churned clients
HORIZON, MONTHS = 90, 12


def stamp(day: date, hour: int = 10) -> str:
    return datetime.combine(day, time(hour), tzinfo=UTC).isoformat()


def plan(today: date) -> list[dict[str, Any]]:
    """Each client's contract start, MRR changes and daily usage counts (deterministic)."""
    rng = random.Random(11)
    out = []
    for i in range(CLIENTS):
        start = today - timedelta(days=400 + 5 * i)
        churns = i in CHURNED
        mrr = rng.randint(300, 3000) * 100
        changes = [(start, mrr)]
        if rng.random() < 0.4:
            changes.append((today - timedelta(days=200), round(mrr * rng.uniform(0.8, 1.3))))
        usage: dict[date, int] = {}
        logins: list[date] = []
        last_obs = today - timedelta(days=HORIZON)
        day = start
        while day <= last_obs:
            fading = churns and (last_obs - day).days < 60 and rng.random() < 0.35
            base = rng.randint(0, 4) if fading else rng.randint(1, 6)
            if base:
                usage[day] = base
            if rng.random() < (0.15 if fading else 0.25):
                logins.append(day)
            day += timedelta(days=3)
        out.append({"start": start, "churns": churns, "changes": changes, "usage": usage, "logins": logins})
    return out


def observations(p: list[dict[str, Any]], today: date) -> tuple[int, int]:
    """(positives, negatives) the model must see: monthly dates back from today − horizon."""
    last_obs = today - timedelta(days=HORIZON)
    pos = neg = 0
    for c in p:
        for k in range(MONTHS):
            obs = last_obs - timedelta(days=30 * k)
            if obs < c["start"]:
                continue
            # churned today: positive only when today is within the horizon of obs
            if c["churns"] and today <= obs + timedelta(days=HORIZON):
                pos += 1
            else:
                neg += 1
    return pos, neg


async def record_history(client: Any, p: list[dict[str, Any]]) -> list[int]:
    ids = []
    for i, c in enumerate(p):
        reg = await call_ok(
            client,
            "register_client",
            name=f"Client {i:02d}",
            tier="smb",
            arr_minor=12 * c["changes"][-1][1],
            contract_start=c["start"].isoformat(),
        )
        ids.append(reg["client_id"])
    billing = [
        {"client_id": cid, "kind": "mrr_change", "amount_minor": amount, "occurred_at": stamp(day)}
        for cid, c in zip(ids, p, strict=True)
        for day, amount in c["changes"]
    ]
    await call_ok(client, "record_billing", events=billing)
    events = []
    for cid, c in zip(ids, p, strict=True):
        for day, n in c["usage"].items():
            events += [
                {
                    "client_id": cid,
                    "user_ref": f"u{j}",
                    "event": "report_run",
                    "occurred_at": stamp(day, 9 + j),
                }
                for j in range(n)
            ]
        events += [
            {"client_id": cid, "user_ref": "u0", "event": "login", "occurred_at": stamp(day, 8)}
            for day in c["logins"]
        ]
    for k in range(0, len(events), 1000):
        await call_ok(client, "record_usage_events", events=events[k : k + 1000])
    for i in CHURNED:
        await call_ok(client, "update_client_info", client_id=ids[i], stage="churned", reason="budget")
    return ids


async def change_after_observation(client: Any, ids: list[int], today: date) -> None:
    """Facts dated after the last observation date (today − horizon) only."""
    for i in CHURNED:
        await call_ok(client, "update_client_info", client_id=ids[i], arr_minor=50_000_000)
    yesterday = today - timedelta(days=1)
    await call_ok(
        client,
        "record_billing",
        events=[
            {"client_id": ids[i], "kind": "mrr_change", "amount_minor": 0, "occurred_at": stamp(yesterday)}
            for i in CHURNED
        ],
    )
    late = [
        {
            "client_id": cid,
            "user_ref": "u0",
            "event": "login",
            "occurred_at": stamp(today - timedelta(days=d)),
        }
        for i, cid in enumerate(ids)
        if i not in CHURNED
        for d in range(1, 30, 2)
    ]
    await call_ok(client, "record_usage_events", events=late)
    scored = await call_ok(
        client,
        "calculate_health_score",
        scope="portfolio",
        as_of=(today - timedelta(days=HORIZON)).isoformat(),
    )
    assert scored["changed"] == CLIENTS - len(CHURNED)  # computed today for a past date, live clients only


async def test_a_change_after_the_observation_dates_cannot_move_the_model(cs_server):
    today = datetime.now(UTC).date()
    p = plan(today)
    pos, neg = observations(p, today)
    last_obs = (today - timedelta(days=HORIZON)).isoformat()
    async with connect(cs_server) as client:
        await call_ok(
            client,
            "configure_cs_thresholds",
            section="churn_model",
            values={"min_positives": 10, "min_negatives": 10},
        )
        ids = await record_history(client, p)
        before = (await call_ok(client, "manage_churn_model", action="train", months=MONTHS))["model"]
        scored_before = await call_ok(client, "predict_churn", model_id=before["model_id"], as_of=last_obs)
        await change_after_observation(client, ids, today)
        after = (await call_ok(client, "manage_churn_model", action="train", months=MONTHS))["model"]
        scored_after = await call_ok(client, "predict_churn", model_id=before["model_id"], as_of=last_obs)
    print(f"\nleakage: AUC before {before['auc']}, after the post-observation change {after['auc']}")
    assert (before["positives"], before["negatives"], before["folds"]) == (pos, neg, 5)
    assert (pos, neg) == (
        len(CHURNED),
        4 * 11 + 36 * 12 - len(CHURNED),
    )  # clients 0–3 started after the 12th date
    assert after["auc"] == before["auc"]
    assert {k: v for k, v in after.items() if k != "model_id"} == {
        k: v for k, v in before.items() if k != "model_id"
    }
    # The same model scores the last observation date the same way after the change.
    assert scored_after["predictions"] == scored_before["predictions"]


async def test_training_refuses_when_the_clients_cannot_fill_two_folds(cs_server):
    today = datetime.now(UTC).date()
    async with connect(cs_server) as client:
        await call_ok(
            client,
            "configure_cs_thresholds",
            section="churn_model",
            values={"min_positives": 2, "min_negatives": 2},
        )
        for i in range(2):
            reg = await call_ok(
                client,
                "register_client",
                name=f"Gone {i}",
                tier="smb",
                contract_start=(today - timedelta(days=400)).isoformat(),
            )
            await call_ok(
                client, "update_client_info", client_id=reg["client_id"], stage="churned", reason="x"
            )
        err = await call_error(client, "manage_churn_model", action="train", months=MONTHS)
    # 2 positives and 2 × 10 negatives pass the label counts; but both clients churned, and a
    # client's observations stay in one fold, so no fold split has a retained client.
    assert err["field"] == "source"
    assert err["message"].startswith("Too few clients to cross-validate: 2 churned and 0 retained")
