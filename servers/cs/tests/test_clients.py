"""The clients toolset through the protocol, checked against rows the tests insert themselves."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from factories import add_client, add_contact, at
from sqlalchemy import func
from sqlmodel import Session, select

from revops_core.models import CoreCompany, CoreContact
from revops_core.testing import connect, error_of
from revops_cs.models.clients import CsClient, CsStageChange
from revops_cs.models.communication import CsEmailMessage
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsUsageEvent

pytestmark = pytest.mark.anyio
AS_OF = date(2026, 3, 31)


def add_events(session: Session, client: CsClient, rows: list[tuple[str, str, str | None, str]]) -> None:
    """rows: (day, user, event, feature)."""
    for day, user, event, feature in rows:
        session.add(
            CsUsageEvent(
                client_id=client.id or 0,
                user_ref=user,
                event=event or "login",
                feature=feature or None,
                occurred_at=at(day),
            )
        )
    session.flush()


def rows(server: Any, model: Any) -> int:
    with server.runtime.db.session() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


async def call(client: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_register_client_writes_company_client_contact_and_history(cs_server):
    async with connect(cs_server) as client:
        out = await call(
            client,
            "register_client",
            {
                "name": "Globex",
                "tier": "enterprise",
                "domain": "https://www.Globex.com/",
                "arr_minor": 5_000_000,
                "seats_purchased": 50,
                "contract_start": "2026-01-01",
                "renewal_date": "2027-01-01",
                "contact_email": "Ann@Globex.com",
                "contact_name": "Ann Lee",
                "owner": "csm@us.com",
            },
        )
        dup = await client.call_tool(
            "register_client", {"name": "Globex 2", "tier": "smb", "domain": "globex.com"}
        )
    assert error_of(dup)["code"] == "conflict"
    assert error_of(dup)["field"] == "domain"
    with cs_server.runtime.db.session() as s:
        stored = s.get(CsClient, out["client_id"])
        company = s.get(CoreCompany, out["company_id"])
        assert company.domain == "globex.com"
        assert stored.arr_minor == 5_000_000
        contact = s.get(CoreContact, out["contact_id"])
        assert stored.seats_purchased == 50
        assert stored.owner == "csm@us.com"
        assert contact.email == "ann@globex.com"
        assert contact.is_primary
        assert contact.last_name == "Lee"
        assert [c.to_stage for c in s.exec(select(CsStageChange))] == ["onboarding"]
    assert rows(cs_server, CoreCompany) == 1
    assert rows(cs_server, CsClient) == 1


async def test_register_client_rejects_bad_dates_and_domain(cs_server):
    async with connect(cs_server) as client:
        bad_dates = await client.call_tool(
            "register_client",
            {"name": "X", "tier": "smb", "contract_start": "2026-05-01", "renewal_date": "2026-04-01"},
        )
        bad_domain = await client.call_tool(
            "register_client", {"name": "X", "tier": "smb", "domain": "not a domain"}
        )
    assert error_of(bad_dates)["code"] == "validation_error"
    assert error_of(bad_domain)["field"] == "domain"
    assert rows(cs_server, CsClient) == 0


async def test_overview_numbers_come_from_rows(cs_server):
    with cs_server.runtime.db.session() as s:
        c = add_client(s, "Acme", renewal_date=date(2026, 5, 30), seats_purchased=10)
        add_events(
            s,
            c,
            [
                ("2026-03-30", "a", "login", ""),
                ("2026-03-29", "b", "report", "reports"),
                ("2026-03-29", "b", "report", "reports"),
                ("2026-03-20", "a", "export", "export"),
                ("2026-02-01", "c", "login", ""),
            ],
        )  # outside the 30-day window
        s.add(CsTicket(client_id=c.id, subject="Broken", status="open", created_at=at("2026-03-01")))
        s.add(CsTicket(client_id=c.id, subject="Old", status="solved", created_at=at("2026-02-01")))
        s.add(CsFeedback(client_id=c.id, kind="nps", score=4, submitted_at=at("2026-01-10")))
        s.add(CsFeedback(client_id=c.id, kind="nps", score=9, submitted_at=at("2026-03-10")))
        cid = c.id
    async with connect(cs_server) as client:
        out = await call(client, "get_client_overview", {"client_id": cid, "as_of": AS_OF.isoformat()})
        missing = await client.call_tool("get_client_overview", {"client_id": 999})
    u = out["usage_30d"]
    assert (u["events"], u["logins"], u["active_users"]) == (4, 1, 2)
    assert u["top_features"] == {"reports": 2, "export": 1}
    assert out["open_tickets"] == 1
    assert out["latest_nps"] == 9
    assert out["renewal_in_days"] == (date(2026, 5, 30) - AS_OF).days
    assert out["health"] is None
    assert "health" in out["missing"]
    assert error_of(missing)["code"] == "not_found"


async def test_update_client_info_validates_and_records_stage_changes(cs_server):
    with cs_server.runtime.db.session() as s:
        cid = add_client(s, "Acme").id
    async with connect(cs_server) as client:
        out = await call(
            client, "update_client_info", {"client_id": cid, "arr_minor": 9_900, "stage": "adoption"}
        )
        skip = await client.call_tool("update_client_info", {"client_id": cid, "stage": "renewal"})
        churn = await client.call_tool("update_client_info", {"client_id": cid, "stage": "churned"})
        nothing = await client.call_tool("update_client_info", {"client_id": cid, "arr_minor": 9_900})
        unknown = await client.call_tool("update_client_info", {"client_id": 404, "arr_minor": 1})
    assert out["changed"] == ["arr_minor", "stage"]
    assert out["stage_change_id"]
    assert error_of(churn)["field"] == "reason"
    assert error_of(nothing)["code"] == "validation_error"
    assert error_of(unknown)["code"] == "not_found"
    assert not skip.is_error  # adoption → renewal is allowed
    with cs_server.runtime.db.session() as s:
        stored = s.get(CsClient, cid)
        assert (stored.arr_minor, stored.stage) == (9_900, "renewal")
        assert [
            (c.from_stage, c.to_stage) for c in s.exec(select(CsStageChange).order_by(CsStageChange.id))
        ] == [("onboarding", "adoption"), ("adoption", "renewal")]


async def test_list_clients_filters_pages_and_health_band(cs_server):
    with cs_server.runtime.db.session() as s:
        ids = [
            add_client(s, f"C{i}", tier="smb" if i % 2 else "enterprise", arr_minor=i * 1000).id
            for i in range(1, 6)
        ]
        s.add(
            CsHealthSnapshot(
                client_id=ids[0],
                as_of=date(2026, 3, 1),
                score=40,
                band="critical",
                components="{}",
                weights="{}",
                inputs_hash="x",
            )
        )
        s.add(
            CsHealthSnapshot(
                client_id=ids[0],
                as_of=date(2026, 3, 8),
                score=75,
                band="good",
                components="{}",
                weights="{}",
                inputs_hash="y",
            )
        )
    async with connect(cs_server) as client:
        p1 = await call(client, "list_clients", {"limit": 2})
        p2 = await call(client, "list_clients", {"limit": 2, "cursor": p1["next_cursor"]})
        smb = await call(client, "list_clients", {"tier": "smb", "arr_min_minor": 2000})
        good = await call(client, "list_clients", {"health_band": "good"})
        critical = await call(client, "list_clients", {"health_band": "critical"})
        bad = await client.call_tool("list_clients", {"arr_min_minor": 5, "arr_max_minor": 1})
    assert p1["total"] == 5
    assert [r["id"] for r in p1["items"] + p2["items"]] == ids[:4]
    assert [r["id"] for r in smb["items"]] == [ids[2], ids[4]]
    assert [r["id"] for r in good["items"]] == [ids[0]]
    assert good["items"][0]["health_score"] == 75
    assert critical["total"] == 0  # only the latest snapshot counts
    assert error_of(bad)["field"] == "arr_max_minor"


async def test_timeline_merges_real_events(cs_server):
    with cs_server.runtime.db.session() as s:
        c = add_client(s, "Acme")
        add_events(
            s,
            c,
            [
                ("2026-01-05", "a", "login", ""),
                ("2026-01-06", "a", "login", ""),
                ("2026-01-07", "a", "report", "reports"),
                ("2026-02-07", "b", "report", "reports"),
            ],
        )
        s.add(
            CsTicket(
                client_id=c.id,
                subject="Bug",
                status="solved",
                created_at=at("2026-01-10"),
                solved_at=at("2026-01-12"),
            )
        )
        s.add(CsFeedback(client_id=c.id, kind="nps", score=10, submitted_at=at("2026-01-20")))
        s.add(
            CsStageChange(
                client_id=c.id, from_stage="onboarding", to_stage="adoption", actor="t", at=at("2026-02-01")
            )
        )
        cid = c.id
    async with connect(cs_server) as client:
        out = await call(client, "get_client_timeline", {"client_id": cid})
        page = await call(client, "get_client_timeline", {"client_id": cid, "limit": 2})
        jan = await call(
            client,
            "get_client_timeline",
            {
                "client_id": cid,
                "start_date": "2026-01-01",
                "end_date": "2026-01-11",
                "kinds": ["first_login", "ticket_opened"],
            },
        )
        bad = await client.call_tool(
            "get_client_timeline", {"client_id": cid, "start_date": "2026-02-01", "end_date": "2026-01-01"}
        )
    kinds = [e["kind"] for e in out["items"]]
    assert kinds == [
        "stage_change",
        "feedback",
        "ticket_solved",
        "ticket_opened",
        "first_feature_use",
        "first_login",
    ]
    assert out["total"] == 6
    assert page["next_cursor"]
    assert len(page["items"]) == 2
    assert [e["kind"] for e in jan["items"]] == ["ticket_opened", "first_login"]
    assert error_of(bad)["field"] == "end_date"


async def test_import_csv_reports_row_errors_and_imports_valid_rows(cs_server):
    csv_text = (
        "name,tier,domain,arr,renewal_date,contact_email\n"
        "Alpha,smb,alpha.io,1200.50,2027-01-01,a@alpha.io\n"
        "Beta,gold,beta.io,10,,\n"
        "Gamma,enterprise,alpha.io,5,,\n"
        "Delta,mid_market,delta.io,abc,2027-02-30,\n"
        "Eps,smb,eps.io,7,,\n"
    )
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with connect(cs_server) as client:
        dry = await call(client, "import_clients_csv", {"csv_text": csv_text, "dry_run": True})
        assert rows(cs_server, CsClient) == 0
        out = (
            await client.call_tool(
                "import_clients_csv", {"csv_text": csv_text}, progress_callback=on_progress
            )
        ).structured_content
        header = await client.call_tool("import_clients_csv", {"csv_text": "nom,tier\nx,smb\n"})
    assert dry["valid"] == 2
    assert dry["imported"] == 0
    assert out["imported"] == 2
    assert out["rows"] == 5
    errors = {(e["row"], e["field"]) for e in out["errors"]}
    assert {(3, "tier"), (4, "domain"), (5, "arr")} <= errors
    assert progress
    assert progress[-1] == 5
    assert error_of(header)["field"] == "csv_text"
    with cs_server.runtime.db.session() as s:
        names = {c.name: c.arr_minor for c in s.exec(select(CsClient))}
    assert names == {"Alpha": 120_050, "Eps": 700}


async def test_archive_and_restore_go_through_plan_and_confirm(cs_server):
    with cs_server.runtime.db.session() as s:
        cid = add_client(s, "Acme").id
    async with connect(cs_server) as client:
        plan = await call(client, "archive_client", {"client_id": cid})
        assert plan["status"] == "planned"
        assert plan["result"] is None
        assert rows(cs_server, CsClient) == 1
        with cs_server.runtime.db.session() as s:
            assert s.get(CsClient, cid).deleted_at is None
        done = await call(client, "archive_client", {"client_id": cid, "confirm": plan["plan_id"]})
        hidden = await client.call_tool("get_client_overview", {"client_id": cid})
        again = await client.call_tool("archive_client", {"client_id": cid})
        listed = await call(client, "list_clients", {"archived": True})
        rplan = await call(client, "archive_client", {"client_id": cid, "action": "restore"})
        restored = await call(
            client,
            "archive_client",
            {"client_id": cid, "action": "restore", "confirm": rplan["plan_id"]},
        )
    assert done["status"] == "done"
    assert done["result"]["archived"]
    assert error_of(hidden)["code"] == "not_found"
    assert error_of(again)["field"] == "action"
    assert listed["total"] == 1
    assert restored["status"] == "done"
    assert not restored["result"]["archived"]
    with cs_server.runtime.db.session() as s:
        assert s.get(CsClient, cid).deleted_at is None


async def test_archiving_between_pages_skips_no_live_client(cs_server):
    with cs_server.runtime.db.session() as s:
        ids = [add_client(s, f"C{i}").id for i in range(7)]
    async with connect(cs_server) as client:
        first = await call(client, "list_clients", {"limit": 3})
        gone = first["items"][0]["id"]
        plan = await call(client, "archive_client", {"client_id": gone})
        await call(client, "archive_client", {"client_id": gone, "confirm": plan["plan_id"]})
        seen = [r["id"] for r in first["items"]]
        cursor = first["next_cursor"]
        while cursor:
            page = await call(client, "list_clients", {"limit": 3, "cursor": cursor})
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
    live = [i for i in ids if i != gone]
    assert sorted(i for i in seen if i != gone) == live  # every live client exactly once
    assert len(seen) == len(set(seen))


async def test_list_clients_refuses_a_cursor_of_another_list(cs_server):
    with cs_server.runtime.db.session() as s:
        c = add_client(s, "Acme")
        for day in ("2026-01-01", "2026-01-02"):
            s.add(CsStageChange(client_id=c.id, to_stage="adoption", actor="t", at=at(day)))
        for i in range(3):
            add_client(s, f"X{i}")
        cid = c.id
    async with connect(cs_server) as client:
        events = await call(client, "get_client_timeline", {"client_id": cid, "limit": 1})
        foreign = await client.call_tool("list_clients", {"cursor": events["next_cursor"]})
        tampered = await client.call_tool("list_clients", {"cursor": "not-a-cursor"})
    assert error_of(foreign)["field"] == "cursor"
    assert error_of(tampered)["code"] == "validation_error"


async def test_timeline_shows_emails_sent_to_the_client(cs_server):
    with cs_server.runtime.db.session() as s:
        c = add_client(s, "Acme")
        other = add_client(s, "Other")
        ann = add_contact(s, c, "ann@acme.test")
        bob = add_contact(s, other, "bob@other.test")
        for contact, owner, subject, day in (
            (ann, c, "Your QBR", "2026-02-03"),
            (bob, other, "Not Acme's", "2026-02-04"),
        ):
            s.add(
                CsEmailMessage(
                    client_id=owner.id,
                    contact_id=contact.id,
                    email=contact.email,
                    subject=subject,
                    body="Hello",
                    dedupe_key=f"k-{subject}",
                    status="delivered",
                    sent_at=at(day),
                )
            )
        s.add(CsFeedback(client_id=c.id, kind="nps", score=8, submitted_at=at("2026-02-01")))
        cid = c.id
    async with connect(cs_server) as client:
        out = await call(client, "get_client_timeline", {"client_id": cid})
        only = await call(client, "get_client_timeline", {"client_id": cid, "kinds": ["message"]})
    assert [(e["kind"], e["title"]) for e in out["items"]] == [
        ("message", "Email: Your QBR"),
        ("feedback", "NPS answer: 8"),
    ]
    email = out["items"][0]
    assert email["ref"].startswith("cs_email_message:")
    assert email["details"]["status"] == "delivered"
    assert email["at"].startswith("2026-02-03")
    assert only["total"] == 1


async def test_client_ids_beyond_the_column_are_validation_errors(cs_server):
    too_big = 2**31
    async with connect(cs_server) as client:
        results = [
            await client.call_tool(tool, {"client_id": too_big})
            for tool in ("get_client_overview", "get_client_timeline", "update_client_info", "archive_client")
        ]
        seats = await client.call_tool(
            "register_client", {"name": "X", "tier": "smb", "seats_purchased": too_big}
        )
        arr = await client.call_tool("list_clients", {"arr_min_minor": too_big})
    for result in [*results, seats, arr]:
        assert error_of(result)["code"] == "validation_error"


async def test_client_reads_work_on_a_read_only_server(make_settings):
    from revops_cs.server import create_server

    server = create_server(make_settings(read_only=True))
    try:
        with server.runtime.db.session() as s:
            cid = add_client(s, "Acme").id
        async with connect(server) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            listed = await call(client, "list_clients", {})
            events = await call(client, "get_client_timeline", {"client_id": cid})
    finally:
        server.runtime.db.dispose()
    assert {"list_clients", "get_client_overview", "get_client_timeline"} <= names
    assert not {"register_client", "archive_client"} & names
    assert [r["id"] for r in listed["items"]] == [cid]
    assert events["total"] == 0
