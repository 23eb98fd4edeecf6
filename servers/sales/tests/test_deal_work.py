"""Line items, tasks, notes, competitors, stage changes and exit criteria, through the protocol."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from sqlmodel import select

from revops_core.models import CoreCompany, CoreContact
from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_sales.models.activities import SalesActivity
from revops_sales.models.deal_work import (
    SalesCompetitor,
    SalesCriterionMet,
    SalesLineItem,
    SalesNote,
    SalesTask,
)
from revops_sales.models.deals import SalesDealChange, SalesStageMove

pytestmark = pytest.mark.anyio


async def _work(client, **arguments) -> dict:
    """update_deal_work, then the deal as get_deal shows it."""
    await call_ok(client, "update_deal_work", **arguments)
    return await call_ok(client, "get_deal", deal_id=arguments["deal_id"])


async def _deal(client, **extra) -> tuple[dict, dict]:
    pipeline = await call_ok(client, "create_pipeline", name="New business")
    deal = await call_ok(
        client, "create_deal", pipeline_id=pipeline["id"], name="Acme", amount_minor=500_00, **extra
    )
    return pipeline, deal


def _stage(pipeline: dict, name: str) -> int:
    return next(s["id"] for s in pipeline["stages"] if s["name"] == name)


def _line(quantity: int, price: int, discount_bp: int) -> int:
    net = Decimal(quantity * price) * (10_000 - discount_bp) / 10_000
    return int(net.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


async def test_line_items_make_the_amount_and_another_currency_is_refused(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        _, deal = await _deal(client)
        work = {"deal_id": deal["id"], "action": "add_line_item"}
        await call_ok(
            client,
            "update_deal_work",
            **work,
            product="Seats",
            quantity=3,
            unit_price_minor=1999,
            discount_bp=1250,
        )
        await call_ok(
            client,
            "update_deal_work",
            **work,
            product="Setup",
            quantity=1,
            unit_price_minor=5,
            discount_bp=5000,
        )
        detail = await _work(
            client,
            **work,
            product="Platform",
            quantity=2,
            unit_price_minor=10_000_00,
            currency="USD",
        )
        changes_before = count_rows(db, SalesDealChange)
        euro = await call_error(
            client, "update_deal_work", **work, product="X", quantity=1, unit_price_minor=1, currency="EUR"
        )
        by_hand = await call_error(client, "update_deal", deal_id=deal["id"], amount_minor=1)
        missing = await call_error(
            client, "update_deal_work", deal_id=deal["id"], action="add_line_item", product="X"
        )
        platform = next(i for i in detail["line_items"] if i["product"] == "Platform")
        after = await _work(
            client,
            deal_id=deal["id"],
            action="remove_line_item",
            line_item_id=platform["id"],
        )
        gone = await call_error(
            client,
            "update_deal_work",
            deal_id=deal["id"],
            action="remove_line_item",
            line_item_id=platform["id"],
        )
    seats, setup, platform_total = _line(3, 1999, 1250), _line(1, 5, 5000), _line(2, 10_000_00, 0)
    assert (seats, setup) == (5247, 2)  # 5 247.375 → 5 247; 2.5 → 2 (half-even)
    assert [i["total"]["amount_minor"] for i in detail["line_items"]] == [seats, setup, platform_total]
    assert {i["total"]["currency"] for i in detail["line_items"]} == {"USD"}
    assert detail["amount_minor"] == seats + setup + platform_total
    assert after["amount_minor"] == seats + setup
    assert (euro["code"], euro["field"]) == ("validation_error", "currency")
    assert (by_hand["code"], by_hand["field"]) == ("validation_error", "amount_minor")
    assert (missing["code"], missing["field"]) == ("validation_error", "quantity")
    assert (gone["code"], gone["field"]) == ("not_found", "line_item_id")
    assert count_rows(db, SalesLineItem) == 2
    # Every amount change is history: 3 adds + 1 remove; the refusals recorded nothing.
    assert changes_before == 3
    with db.session() as s:
        amounts = [c.new_value for c in s.exec(select(SalesDealChange).order_by(SalesDealChange.id))]  # type: ignore[arg-type]
    assert amounts == [
        str(seats),
        str(seats + setup),
        str(seats + setup + platform_total),
        str(seats + setup),
    ]


async def test_tasks_give_the_next_step_and_completion_is_an_activity(sales_server) -> None:
    db = sales_server.runtime.db
    today = datetime.now(UTC).date()
    async with connect(sales_server) as client:
        _, deal = await _deal(client, owner="ana")
        add = {"deal_id": deal["id"], "action": "add_task"}
        later = await _work(
            client,
            **add,
            title="Send proposal",
            due_date=(today + timedelta(days=5)).isoformat(),
        )
        await call_ok(client, "update_deal_work", **add, title="Someday", owner="bo")
        soon = await _work(
            client,
            **add,
            title="Book demo",
            due_date=(today + timedelta(days=2)).isoformat(),
        )
        first = soon["next_step"]
        completed_one = await call_ok(
            client, "update_deal_work", deal_id=deal["id"], action="complete_task", task_id=first["id"]
        )
        done = await call_ok(client, "get_deal", deal_id=deal["id"])
        activities = count_rows(db, SalesActivity)
        again = await call_error(
            client, "update_deal_work", deal_id=deal["id"], action="complete_task", task_id=first["id"]
        )
        anas = await call_ok(client, "list_tasks", owner="ana")
        completed = await call_ok(client, "list_tasks", done=True)
        due = await call_ok(client, "list_tasks", due_by=(today + timedelta(days=5)).isoformat())
    assert first["title"] == "Book demo"
    assert completed_one == {
        "deal_id": deal["id"],
        "id": first["id"],
        "amount_minor": 500_00,
        "currency": "USD",
    }
    assert [t["title"] for t in soon["open_tasks"]] == ["Book demo", "Send proposal", "Someday"]
    assert later["next_step"]["title"] == "Send proposal"
    assert done["next_step"]["title"] == "Send proposal"
    assert [t["title"] for t in done["open_tasks"]] == ["Send proposal", "Someday"]
    assert (again["code"], again["field"]) == ("conflict", "task_id")
    assert activities == 1
    with db.session() as s:
        activity = s.exec(select(SalesActivity)).one()
    assert (activity.kind, activity.deal_id, activity.subject) == ("task_done", deal["id"], "Book demo")
    assert (activity.source_table, activity.source_id, activity.owner) == ("sales_task", first["id"], "ana")
    assert [t["title"] for t in anas["items"]] == ["Send proposal"]  # owner defaults to the deal's
    assert [t["title"] for t in completed["items"]] == ["Book demo"]
    assert [t["title"] for t in due["items"]] == ["Send proposal"]
    assert count_rows(db, SalesTask) == 3


async def test_notes_on_deals_contacts_and_companies_are_note_activities(sales_server) -> None:
    db = sales_server.runtime.db
    with db.session(write=True) as s:
        company = CoreCompany(name="Acme")
        s.add(company)
        s.flush()
        contact = CoreContact(name="Ann", email="ann@acme.test", company_id=company.id)
        s.add(contact)
        s.flush()
        company_id, contact_id = company.id, contact.id
    async with connect(sales_server) as client:
        _, deal = await _deal(client, company_id=company_id)
        for i in range(7):
            await call_ok(client, "add_note", deal_id=deal["id"], body=f"Deal note {i}\nsecond line")
        await call_ok(client, "add_note", contact_id=contact_id, body="Prefers e-mail.")
        await call_ok(client, "add_note", company_id=company_id, body="Budget cycle in March.")
        before = count_rows(db, SalesNote)
        two = await call_error(client, "add_note", deal_id=deal["id"], contact_id=contact_id, body="x")
        none = await call_error(client, "add_note", body="x")
        unknown = await call_error(client, "add_note", contact_id=contact_id + 100, body="x")
        detail = await call_ok(client, "get_deal", deal_id=deal["id"])
        page = await call_ok(client, "list_notes", deal_id=deal["id"], limit=4)
        rest = await call_ok(client, "list_notes", deal_id=deal["id"], limit=4, cursor=page["next_cursor"])
        of_contact = await call_ok(client, "list_notes", contact_id=contact_id)
    assert before == 9
    assert count_rows(db, SalesNote) == 9
    assert (two["code"], two["field"]) == ("validation_error", "contact_id")
    assert (none["code"], none["field"]) == ("validation_error", "deal_id")
    assert (unknown["code"], unknown["field"]) == ("not_found", "contact_id")
    assert [n["body"].split("\n")[0] for n in detail["recent_notes"]] == [
        f"Deal note {i}" for i in (6, 5, 4, 3, 2)
    ]
    assert [n["body"][:11] for n in page["items"] + rest["items"]] == [
        f"Deal note {i}" for i in range(6, -1, -1)
    ]
    assert page["total"] == 7
    assert [n["body"] for n in of_contact["items"]] == ["Prefers e-mail."]
    with db.session() as s:
        rows = s.exec(select(SalesActivity).where(SalesActivity.kind == "note")).all()
    assert len(rows) == 9
    deal_rows = [r for r in rows if r.deal_id == deal["id"]]
    assert len(deal_rows) == 7
    assert all(r.company_id == company_id for r in deal_rows)
    assert deal_rows[0].subject == "Deal note 0"
    assert sum(1 for r in rows if r.contact_id == contact_id) == 1


async def test_competitors_are_one_row_per_name(sales_server) -> None:
    async with connect(sales_server) as client:
        _, deal = await _deal(client)
        work = {"deal_id": deal["id"], "action": "set_competitor"}
        await call_ok(client, "update_deal_work", **work, competitor="Globex")
        await call_ok(
            client, "update_deal_work", **work, competitor="Initech", competitor_status="won_against"
        )
        updated = await _work(
            client,
            **work,
            competitor="globex",
            competitor_status="lost_to",
            competitor_notes="Cheaper.",
        )
        removed = await _work(client, deal_id=deal["id"], action="remove_competitor", competitor="Initech")
        unknown = await call_error(
            client, "update_deal_work", deal_id=deal["id"], action="remove_competitor", competitor="Nope"
        )
        bad = await call_error(
            client, "update_deal_work", **work, competitor="X", competitor_status="winning"
        )
    assert [(c["name"], c["status"], c["notes"]) for c in updated["competitors"]] == [
        ("Globex", "lost_to", "Cheaper."),
        ("Initech", "won_against", None),
    ]
    assert [c["name"] for c in removed["competitors"]] == ["Globex"]
    assert (unknown["code"], unknown["field"]) == ("not_found", "competitor")
    assert (bad["code"], bad["field"]) == ("validation_error", "competitor_status")
    assert count_rows(sales_server.runtime.db, SalesCompetitor) == 1


async def test_stages_are_added_renamed_and_reordered(sales_server) -> None:
    async with connect(sales_server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        pid = pipeline["id"]
        added = await call_ok(
            client,
            "configure_pipeline",
            pipeline_id=pid,
            action="add_stage",
            name="demo",
            probability_pct=35,
            position=2,
        )
        last_open = await call_ok(
            client,
            "configure_pipeline",
            pipeline_id=pid,
            action="add_stage",
            name="legal",
            probability_pct=90,
        )
        renamed = await call_ok(
            client,
            "configure_pipeline",
            pipeline_id=pid,
            action="rename_stage",
            stage_id=_stage(added, "demo"),
            name="product demo",
        )
        taken = await call_error(
            client,
            "configure_pipeline",
            pipeline_id=pid,
            action="rename_stage",
            stage_id=_stage(added, "demo"),
            name="Proposal",
        )
        past_closed = await call_error(
            client,
            "configure_pipeline",
            pipeline_id=pid,
            action="add_stage",
            name="x",
            probability_pct=1,
            position=11,
        )
        open_ids = [s["id"] for s in renamed["stages"] if s["kind"] == "open"]
        partial = await call_error(
            client, "configure_pipeline", pipeline_id=pid, action="reorder_stages", stage_ids=open_ids[:-1]
        )
        unchanged = await call_ok(client, "list_pipelines")
        reordered = await call_ok(
            client,
            "configure_pipeline",
            pipeline_id=pid,
            action="reorder_stages",
            stage_ids=list(reversed(open_ids)),
        )
    names = [s["name"] for s in last_open["stages"]]
    assert names[:4] == ["prospecting", "qualification", "demo", "needs analysis"]
    assert names[-3:] == ["legal", "closed won", "closed lost"]
    assert [s["position"] for s in last_open["stages"]] == list(range(12))
    assert _stage(renamed, "product demo") == _stage(added, "demo")
    assert (taken["code"], taken["field"]) == ("conflict", "name")
    assert (past_closed["code"], past_closed["field"]) == ("validation_error", "position")
    assert (partial["code"], partial["field"]) == ("validation_error", "stage_ids")
    assert [s["name"] for s in unchanged["result"][0]["stages"]] == [s["name"] for s in renamed["stages"]]
    assert [s["id"] for s in reordered["stages"]][:10] == list(reversed(open_ids))
    assert [s["name"] for s in reordered["stages"]][-2:] == ["closed won", "closed lost"]
    assert [s["position"] for s in reordered["stages"]] == list(range(12))


async def test_forward_moves_need_the_exit_criteria_met_or_an_override(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        pipeline, deal = await _deal(client)
        pid = pipeline["id"]
        prospecting, qualification, proposal = (
            _stage(pipeline, n) for n in ("prospecting", "qualification", "proposal")
        )
        configured = await call_ok(
            client,
            "configure_pipeline",
            pipeline_id=pid,
            action="set_exit_criteria",
            stage_id=prospecting,
            criteria=["Budget confirmed", "Champion named"],
        )
        await call_ok(
            client,
            "configure_pipeline",
            pipeline_id=pid,
            action="set_exit_criteria",
            stage_id=qualification,
            criteria=["Pain agreed"],
        )
        budget, champion = (c["id"] for c in _criteria(configured, prospecting))
        moves = count_rows(db, SalesStageMove)
        blocked = await call_error(client, "move_deal_stage", deal_id=deal["id"], stage_id=qualification)
        partly = await _work(client, deal_id=deal["id"], action="meet_criteria", criterion_ids=[budget])
        still = await call_error(client, "move_deal_stage", deal_id=deal["id"], stage_id=qualification)
        await call_ok(
            client,
            "update_deal_work",
            deal_id=deal["id"],
            action="meet_criteria",
            criterion_ids=[champion, budget],
        )
        skipping = await call_error(client, "move_deal_stage", deal_id=deal["id"], stage_id=proposal)
        blocked_moves = count_rows(db, SalesStageMove)
        moved = await call_ok(client, "move_deal_stage", deal_id=deal["id"], stage_id=qualification)
        back = await call_ok(client, "move_deal_stage", deal_id=deal["id"], stage_id=prospecting)
        other = await call_ok(client, "create_deal", pipeline_id=pid, name="Other", amount_minor=1)
        lost = await call_ok(
            client, "move_deal_stage", deal_id=other["id"], stage_id=_stage(pipeline, "closed lost")
        )
        third = await call_ok(client, "create_deal", pipeline_id=pid, name="Third", amount_minor=1)
        overridden = await call_ok(
            client,
            "move_deal_stage",
            deal_id=third["id"],
            stage_id=proposal,
            override_reason="CEO signed off",
        )
        foreign = await call_error(
            client, "update_deal_work", deal_id=deal["id"], action="meet_criteria", criterion_ids=[10_000]
        )
    assert [c["text"] for c in _criteria(configured, prospecting)] == ["Budget confirmed", "Champion named"]
    assert (blocked["code"], blocked["field"]) == ("conflict", "stage_id")
    assert "Budget confirmed" in blocked["message"]
    assert "Champion named" in blocked["message"]
    assert [(c["text"], c["met"]) for c in partly["exit_criteria"]] == [
        ("Budget confirmed", True),
        ("Champion named", False),
    ]
    assert "Champion named" in still["message"]
    assert "Budget confirmed" not in still["message"]
    assert "Pain agreed" in skipping["message"]  # skipping qualification passes its checklist too
    assert blocked_moves == moves
    assert moved["stage"] == "qualification"
    assert back["stage"] == "prospecting"
    assert lost["status"] == "lost"
    assert overridden["stage"] == "proposal"
    assert (foreign["code"], foreign["field"]) == ("validation_error", "criterion_ids")
    with db.session() as s:
        met = s.exec(select(SalesCriterionMet).where(SalesCriterionMet.deal_id == third["id"])).all()
    assert sorted(m.override_reason or "" for m in met) == ["CEO signed off"] * 3
    assert count_rows(db, SalesCriterionMet) == 5


def _criteria(pipeline: dict, stage_id: int) -> list[dict]:
    return next(s["exit_criteria"] for s in pipeline["stages"] if s["id"] == stage_id)


async def test_replacing_a_checklist_keeps_kept_lines_and_retires_the_rest(sales_server) -> None:
    async with connect(sales_server) as client:
        pipeline, _ = await _deal(client)
        stage = _stage(pipeline, "prospecting")
        args = {"pipeline_id": pipeline["id"], "action": "set_exit_criteria", "stage_id": stage}
        first = await call_ok(client, "configure_pipeline", **args, criteria=["A", "B"])
        second = await call_ok(client, "configure_pipeline", **args, criteria=["C", "A"])
        repeated = await call_error(client, "configure_pipeline", **args, criteria=["C", "c"])
        closed = await call_error(
            client,
            "configure_pipeline",
            **{**args, "stage_id": _stage(pipeline, "closed won")},
            criteria=["X"],
        )
        cleared = await call_ok(client, "configure_pipeline", **args, criteria=[])
    a_id = _criteria(first, stage)[0]["id"]
    assert [(c["text"], c["id"] == a_id) for c in _criteria(second, stage)] == [("C", False), ("A", True)]
    assert (repeated["code"], repeated["field"]) == ("validation_error", "criteria")
    assert (closed["code"], closed["field"]) == ("validation_error", "stage_id")
    assert _criteria(cleared, stage) == []
