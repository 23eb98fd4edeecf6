"""E-mail through the protocol on SQLite and PostgreSQL: Gmail send, reply in thread, drafts, logged
messages and sequences — Gmail faked at the network edge (`google_fakes`, each request checked
against the Gmail Discovery document), outcomes stored honestly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google_fakes import connect_google, failure, fake_google
from sqlalchemy import update
from sqlmodel import select

from revops_core.models import CoreCompany, CoreContact
from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_sales.models.activities import SalesActivity
from revops_sales.models.email import SalesEmailMessage, SalesSequenceEnrollment

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(make_settings):
    return make_settings(breaker_min_calls=100_000, http_max_attempts=2)


@pytest.fixture
def server(sales_server, settings):
    connect_google(sales_server, settings)
    return sales_server


def seed_contacts(server, *emails: str, unsubscribed: bool = False) -> list[int]:
    with server.runtime.db.session(write=True) as s:
        company = CoreCompany(name="Acme")
        s.add(company)
        s.flush()
        rows = [
            CoreContact(
                email=e, company_id=company.id, unsubscribed_at=datetime.now(UTC) if unsubscribed else None
            )
            for e in emails
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def activity_kinds(server) -> list[str]:
    with server.runtime.db.session() as s:
        return sorted(a.kind for a in s.exec(select(SalesActivity)).all())


async def test_one_recipient_is_sent_at_once_logged_and_never_sent_twice(server) -> None:
    (ana,) = seed_contacts(server, "ana@acme.test")
    with fake_google() as google:
        async with connect(server) as client:
            args = {"action": "send", "contact_ids": [ana], "subject": "Hello", "body": "Hi Ana,\nthanks."}
            sent = await call_ok(client, "send_email", **args)
            again = await call_ok(client, "send_email", **args)
    result = sent["result"]
    (mail,) = google.sent
    assert google.requests == ["gmail.users.messages.send"]  # the repeat never reached Gmail
    assert (sent["status"], result["status"], again["result"]["status"]) == ("done", "sent", "already_sent")
    assert (mail.message["To"], mail.message["Subject"]) == ("ana@acme.test", "Hello")
    assert mail.message.get_content().strip() == "Hi Ana,\nthanks."
    assert result["message"]["rfc_message_id"] == mail.message["Message-ID"]
    assert (result["message"]["gmail_id"], result["message"]["thread_id"]) == (mail.gmail_id, mail.thread_id)
    assert activity_kinds(server) == ["email_sent"]
    assert count_rows(server.runtime.db, SalesEmailMessage) == 1


async def test_more_than_one_recipient_needs_a_confirmed_plan(server) -> None:
    ana, bob = seed_contacts(server, "ana@acme.test", "bob@acme.test")
    with fake_google() as google:
        async with connect(server) as client:
            args = {"action": "send", "contact_ids": [ana, bob], "subject": "Update", "body": "News."}
            planned = await call_ok(client, "send_email", **args)
            assert (google.sent, count_rows(server.runtime.db, SalesEmailMessage)) == ([], 0)
            done = await call_ok(client, "send_email", **args, confirm=planned["plan_id"])
    assert planned["status"] == "planned"
    assert planned["plan"]["affected_count"] == 2
    assert done["result"]["status"] == "sent"
    assert google.sent[0].message["To"] == "ana@acme.test, bob@acme.test"
    assert activity_kinds(server) == ["email_sent", "email_sent"]  # one touch per contact


async def test_a_reply_goes_into_the_thread_with_in_reply_to_and_references(server) -> None:
    (ana,) = seed_contacts(server, "ana@acme.test")
    with fake_google() as google:
        async with connect(server) as client:
            logged = await call_ok(
                client,
                "log_email",
                direction="received",
                contact_id=ana,
                subject="Pricing?",
                occurred_at="2026-03-02T09:00:00Z",
                thread_id="t-77",
                rfc_message_id="<q1@acme.test>",
            )
            twice = await call_error(
                client,
                "log_email",
                direction="received",
                contact_id=ana,
                subject="Pricing?",
                occurred_at="2026-03-02T09:00:00Z",
                thread_id="t-77",
                rfc_message_id="<q1@acme.test>",
            )
            reply = await call_ok(
                client,
                "send_email",
                action="send",
                reply_to_message_id=logged["message"]["id"],
                body="Here it is.",
            )
            follow = await call_ok(
                client,
                "send_email",
                action="send",
                reply_to_message_id=reply["result"]["message"]["id"],
                body="Any questions?",
            )
    first, second = google.sent
    assert [s.thread_id for s in google.sent] == ["t-77", "t-77"]
    assert (first.message["Subject"], first.message["In-Reply-To"]) == ("Re: Pricing?", "<q1@acme.test>")
    assert first.message["References"] == "<q1@acme.test>"
    assert second.message["In-Reply-To"] == first.message["Message-ID"]
    assert second.message["References"] == f"<q1@acme.test> {first.message['Message-ID']}"
    assert second.message["To"] == "ana@acme.test"
    assert follow["result"]["message"]["thread_id"] == "t-77"
    assert twice["code"] == "conflict"
    assert activity_kinds(server) == ["email_received", "email_sent", "email_sent"]


async def test_drafts_are_created_in_gmail_and_listed_without_a_touch(server) -> None:
    ana, bob = seed_contacts(server, "ana@acme.test", "bob@acme.test")
    with fake_google() as google:
        async with connect(server) as client:
            draft = await call_ok(
                client, "send_email", action="draft", contact_ids=[ana, bob], subject="Draft", body="Later."
            )
            await call_ok(client, "send_email", action="send", contact_ids=[ana], subject="Now", body="Now.")
            drafts = await call_ok(client, "list_emails", status="draft")
            everything = await call_ok(client, "list_emails", limit=1)
            rest = await call_ok(client, "list_emails", limit=1, cursor=everything["next_cursor"])
    assert google.requests == ["gmail.users.drafts.create", "gmail.users.messages.send"]
    assert (draft["status"], draft["result"]["status"]) == ("done", "draft")  # no plan: nothing is sent
    assert [m["subject"] for m in drafts["items"]] == ["Draft"]
    assert drafts["items"][0]["gmail_id"] == google.sent[0].gmail_id
    assert [m["subject"] for m in everything["items"] + rest["items"]] == ["Now", "Draft"]
    assert activity_kinds(server) == ["email_sent"]


@pytest.mark.parametrize(
    ("kind", "code"),
    [("401", "integration_auth"), ("429", "rate_limited"), ("500", "integration_unavailable")],
)
async def test_a_refused_send_stores_nothing(server, kind, code) -> None:
    (ana,) = seed_contacts(server, "ana@acme.test")
    with fake_google() as google:
        google.mock.routes["send"].mock(side_effect=failure(kind))
        async with connect(server) as client:
            err = await call_error(
                client, "send_email", action="send", contact_ids=[ana], subject="S", body="B"
            )
    assert err["code"] == code
    assert count_rows(server.runtime.db, SalesEmailMessage) == 0
    assert activity_kinds(server) == []


@pytest.mark.parametrize("kind", ["timeout", "malformed"])
async def test_a_send_without_a_clear_answer_is_unknown_not_sent_and_not_resent(server, kind) -> None:
    (ana,) = seed_contacts(server, "ana@acme.test")
    with fake_google() as google:
        route = google.mock.routes["send"]
        route.mock(side_effect=failure(kind))
        async with connect(server) as client:
            args = {"action": "send", "contact_ids": [ana], "subject": "S", "body": "B"}
            got = await call_ok(client, "send_email", **args)
            again = await call_ok(client, "send_email", **args)
    assert route.call_count == 1
    assert (got["result"]["status"], got["result"]["message"]["status"]) == ("unknown", "unknown")
    assert again["result"]["status"] == "already_sent"
    assert count_rows(server.runtime.db, SalesEmailMessage, SalesEmailMessage.status == "sent") == 0
    assert activity_kinds(server) == []  # no confirmed touch


async def test_a_429_is_retried_after_retry_after(server) -> None:
    (ana,) = seed_contacts(server, "ana@acme.test")
    with fake_google() as google:
        route = google.mock.routes["send"]
        answers = iter([failure("429"), google.send])
        route.mock(side_effect=lambda request: next(answers)(request))
        async with connect(server) as client:
            got = await call_ok(client, "send_email", action="send", contact_ids=[ana], subject="S", body="B")
    assert route.call_count == 2
    assert got["result"]["status"] == "sent"


async def test_bad_input_and_missing_credentials_change_nothing(sales_server, settings) -> None:
    (ana,) = seed_contacts(sales_server, "ana@acme.test")
    (gone,) = seed_contacts(sales_server, "gone@acme.test", unsubscribed=True)
    async with connect(sales_server) as client:
        unconfigured = await call_error(
            client, "send_email", action="send", contact_ids=[ana], subject="S", body="B"
        )
        connect_google(sales_server, settings, grant=False)
        no_grant = await call_error(
            client, "send_email", action="send", contact_ids=[ana], subject="S", body="B"
        )
        no_subject = await call_error(client, "send_email", action="send", contact_ids=[ana], body="B")
        unsubscribed = await call_error(
            client, "send_email", action="send", contact_ids=[gone], subject="S", body="B"
        )
    assert unconfigured["code"] == "configuration_error"
    assert (
        "revops vault set google client_id=<oauth client id> client_secret=<oauth client secret>"
        in (unconfigured["hint"])
    )
    assert no_grant["code"] == "configuration_error"
    assert "revops vault set google --name oauth refresh_token=<refresh token>" in no_grant["hint"]
    assert (no_subject["code"], no_subject["field"]) == ("validation_error", "subject")
    assert (unsubscribed["code"], unsubscribed["field"]) == ("validation_error", "contact_ids")
    assert count_rows(sales_server.runtime.db, SalesEmailMessage) == 0


STEPS = [
    {"delay_days": 0, "subject": "Intro", "body": "Hello."},
    {"delay_days": 3, "body": "Following up."},
]


def make_due(server, enrollment_id: int) -> None:
    with server.runtime.db.session(write=True) as s:
        s.execute(
            update(SalesSequenceEnrollment)
            .where(SalesSequenceEnrollment.id == enrollment_id)
            .values(next_due_at=datetime.now(UTC) - timedelta(minutes=1))
        )


async def test_sequences_send_due_steps_in_thread_stop_on_reply_and_pause_on_bounce(server) -> None:
    ana, bob, cy = seed_contacts(server, "ana@acme.test", "bob@acme.test", "cy@acme.test")
    with fake_google() as google:
        async with connect(server) as client:
            seq = (await call_ok(client, "manage_sequence", action="create", name="Outbound", steps=STEPS))[
                "result"
            ]
            enrolled = await call_ok(
                client, "manage_sequence", action="enrol", sequence_id=seq["id"], contact_ids=[ana, bob]
            )
            duplicate = await call_error(
                client, "manage_sequence", action="enrol", sequence_id=seq["id"], contact_ids=[bob, cy]
            )
            planned = await call_ok(client, "manage_sequence", action="run_due")
            assert google.sent == []
            ran = await call_ok(client, "manage_sequence", action="run_due", confirm=planned["plan_id"])
            idle = await call_ok(client, "manage_sequence", action="run_due")
            ana_e, bob_e = ran["result"]["enrollments"]
            # Ana answers in her thread: her sequence stops; Bob's address bounces: his pauses.
            replied = await call_ok(
                client,
                "log_email",
                direction="received",
                contact_id=ana,
                subject="Re: Intro",
                occurred_at="2026-03-03T10:00:00Z",
                thread_id=ana_e["thread_id"],
            )
            make_due(server, ana_e["id"])
            after_reply = await call_ok(client, "manage_sequence", action="run_due")
            await call_ok(client, "manage_sequence", action="enrol", sequence_id=seq["id"], contact_ids=[cy])
            first_cy = await call_ok(client, "manage_sequence", action="run_due")
            (cy_e,) = first_cy["result"]["enrollments"]
            make_due(server, cy_e["id"])
            second_cy = await call_ok(client, "manage_sequence", action="run_due")
            bounced = await call_ok(
                client,
                "log_email",
                direction="bounced",
                contact_id=bob,
                subject="Undeliverable",
                occurred_at="2026-03-03T11:00:00Z",
                thread_id=bob_e["thread_id"],
            )
            sent_by_seq = await call_ok(client, "list_emails", sequence_id=seq["id"], status="sent")
    assert [e["status"] for e in enrolled["result"]["enrollments"]] == ["active", "active"]
    assert (duplicate["code"], duplicate["field"]) == ("conflict", "contact_ids")
    assert planned["plan"]["affected_count"] == 2
    assert [r["status"] for r in ran["result"]["results"]] == ["sent", "sent"]
    sent_at = datetime.fromisoformat(ran["result"]["results"][0]["message"]["occurred_at"])
    assert datetime.fromisoformat(ana_e["next_due_at"]) == sent_at + timedelta(days=3)
    assert (ana_e["next_step"], ana_e["status"]) == (1, "active")
    assert idle["result"]["note"] == "No step is due."
    assert replied["stopped_enrollments"] == [ana_e["id"]]
    assert after_reply["result"]["note"] == "No step is due."  # stopped: the due step is not sent
    assert bounced["stopped_enrollments"] == [bob_e["id"]]
    step1, step2 = google.sent[2], google.sent[3]  # Cy's two steps
    assert step2.thread_id == step1.thread_id
    assert (step2.message["Subject"], step2.message["In-Reply-To"]) == (
        "Re: Intro",
        step1.message["Message-ID"],
    )
    assert second_cy["result"]["enrollments"][0]["status"] == "completed"
    assert len(google.sent) == 4
    assert sent_by_seq["total"] == 4
    with server.runtime.db.session() as s:
        states = {e.contact_id: e.status for e in s.exec(select(SalesSequenceEnrollment)).all()}
    assert states == {ana: "stopped", bob: "paused", cy: "completed"}


async def test_a_sequence_step_without_a_clear_answer_holds_the_enrolment(server) -> None:
    (ana,) = seed_contacts(server, "ana@acme.test")
    with fake_google() as google:
        google.mock.routes["send"].mock(side_effect=failure("timeout"))
        async with connect(server) as client:
            seq = (await call_ok(client, "manage_sequence", action="create", name="S", steps=STEPS))["result"]
            await call_ok(client, "manage_sequence", action="enrol", sequence_id=seq["id"], contact_ids=[ana])
            ran = await call_ok(client, "manage_sequence", action="run_due")
            again = await call_ok(client, "manage_sequence", action="run_due")
        google.mock.routes["send"].mock(side_effect=failure("500"))
        async with connect(server) as client:
            await call_ok(
                client,
                "manage_sequence",
                action="enrol",
                sequence_id=seq["id"],
                contact_ids=seed_contacts(server, "x@acme.test"),
            )
            refused = await call_error(client, "manage_sequence", action="run_due")
    assert ran["result"]["results"][0]["status"] == "unknown"
    assert ran["result"]["enrollments"][0]["status"] == "held"
    assert again["result"]["note"] == "No step is due."  # never resent automatically
    assert refused["code"] == "integration_unavailable"
    with server.runtime.db.session() as s:
        states = sorted(e.status for e in s.exec(select(SalesSequenceEnrollment)).all())
    assert states == ["active", "held"]  # the refused step left its enrolment as it was
    assert count_rows(server.runtime.db, SalesEmailMessage) == 1


async def test_a_contact_who_unsubscribed_after_enrolment_is_stopped_not_mailed(server) -> None:
    ana, bob = seed_contacts(server, "ana@acme.test", "bob@acme.test")
    with fake_google() as google:
        async with connect(server) as client:
            seq = (await call_ok(client, "manage_sequence", action="create", name="S", steps=STEPS))["result"]
            await call_ok(
                client, "manage_sequence", action="enrol", sequence_id=seq["id"], contact_ids=[ana, bob]
            )
            with server.runtime.db.session(write=True) as s:
                s.execute(
                    update(CoreContact).where(CoreContact.id == bob).values(unsubscribed_at=datetime.now(UTC))
                )
            ran = await call_ok(client, "manage_sequence", action="run_due")  # one due: sent at once
    assert ran["status"] == "done"
    assert [r["to"] for r in ran["result"]["results"]] == [["ana@acme.test"]]
    assert [m.message["To"] for m in google.sent] == ["ana@acme.test"]
    with server.runtime.db.session() as s:
        states = {e.contact_id: e.status for e in s.exec(select(SalesSequenceEnrollment)).all()}
    assert states == {ana: "active", bob: "stopped"}
