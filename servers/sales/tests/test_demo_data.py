"""The Sales demo generator: deterministic, and every deal's history agrees with its current state."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text

from revops_sales.demo import generate_sales_demo
from revops_sales.demo.last_week import NEW_DEALS

AS_OF = date(2026, 12, 6)


def _fingerprint(session: Any) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in session.execute(
            text(
                "SELECT d.name, d.owner, d.amount_minor, d.close_date, s.name, d.source, count(m.id) "
                "FROM sales_deal d JOIN sales_stage s ON s.id = d.stage_id "
                "JOIN sales_stage_move m ON m.deal_id = d.id GROUP BY d.id, d.name, d.owner, "
                "d.amount_minor, d.close_date, s.name, d.source ORDER BY d.name"
            )
        )
    ]


def test_the_demo_is_deterministic_and_its_histories_reconcile(db: Any) -> None:
    with db.session(
        write=True
    ) as session:  # a first run, rolled back: the same seed must write the same rows
        generate_sales_demo(session, seed=7, deals=300, as_of=AS_OF)
        rehearsal = _fingerprint(session)
        session.rollback()
    with db.session(write=True) as session:
        written = generate_sales_demo(session, seed=7, deals=300, as_of=AS_OF)
    with db.session() as session:
        # the last move of every deal enters the stage it is in now
        mismatched = session.execute(
            text(
                "SELECT count(*) FROM sales_deal d JOIN sales_stage_move m ON m.deal_id = d.id "
                "WHERE m.id = (SELECT max(id) FROM sales_stage_move WHERE deal_id = d.id) "
                "AND m.to_stage_id <> d.stage_id"
            )
        ).scalar_one()
        # closed_at is set exactly when the current stage is won or lost
        wrong_closed = session.execute(
            text(
                "SELECT count(*) FROM sales_deal d JOIN sales_stage s ON s.id = d.stage_id "
                "WHERE (s.kind = 'open') <> (d.closed_at IS NULL)"
            )
        ).scalar_one()
        # every chain starts with one creation move and each move leaves the stage the last one entered
        broken_chain = session.execute(
            text(
                "SELECT count(*) FROM sales_stage_move m WHERE m.from_stage_id IS NOT NULL "
                "AND m.from_stage_id <> (SELECT p.to_stage_id FROM sales_stage_move p "
                "WHERE p.deal_id = m.deal_id AND p.id < m.id ORDER BY p.id DESC LIMIT 1)"
            )
        ).scalar_one()
        creations = session.execute(
            text("SELECT count(*) FROM sales_stage_move WHERE from_stage_id IS NULL")
        ).scalar_one()
        future = session.execute(
            text("SELECT count(*) FROM sales_activity WHERE occurred_at > :now"),
            {"now": "2026-12-06 08:00:00"},
        ).scalar_one()
    assert (written.deals, creations) == (300, 300 + NEW_DEALS)  # and the week's new deals
    assert (mismatched, wrong_closed, broken_chain) == (0, 0, 0)
    assert future == 0
    with db.session() as session:
        assert _fingerprint(session) == rehearsal
