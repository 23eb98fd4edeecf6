"""SendGrid event-webhook ingestion (ingest_email_events) and the email metrics it feeds (get_email_stats)."""

from __future__ import annotations

from typing import Any

import pytest
from comm_helpers import count
from factories import add_client, add_contact, at

from revops_core.models import CoreContact
from revops_core.testing import call_ok, connect, error_of
from revops_cs.models.communication import CsEmailEvent, CsEmailMessage

pytestmark = pytest.mark.anyio
T0 = 1_780_000_000  # 2026-05-28


@pytest.fixture
def sent(cs_server) -> dict[str, Any]:
    """Three accepted emails to three contacts of one client."""
    ids: dict[str, Any] = {}
    with cs_server.runtime.db.session(write=True) as s:
        client = add_client(s, "Acme")
        ids["client"] = client.id
        for n, name in enumerate(("ann", "bob", "cid")):
            contact = add_contact(s, client, f"{name}@acme.test")
            msg = CsEmailMessage(
                client_id=client.id,
                contact_id=contact.id,
                email=contact.email,
                subject="s",
                body="b",
                dedupe_key=f"key-{name}",
                status="accepted",
                provider_message_id=f"sgid{n}",
                sent_at=at("2026-05-27"),
            )
            s.add(msg)
            s.flush()
            ids[name] = msg.id
            ids[f"{name}_contact"] = contact.id
    return ids


def ev(sg_event_id: str, event: str, email: str, **extra: Any) -> dict[str, Any]:
    return {"sg_event_id": sg_event_id, "event": event, "email": email, "timestamp": T0, **extra}


PAYLOAD = [
    ev("e1", "delivered", "ann@acme.test", revops_ref="key-ann"),
    ev("e2", "delivered", "bob@acme.test", sg_message_id="sgid1.filterdrecv-1"),
    ev("e3", "open", "ann@acme.test", revops_ref="key-ann"),
    ev("e4", "open", "ann@acme.test", revops_ref="key-ann"),
    ev("e5", "click", "ann@acme.test", revops_ref="key-ann", url="https://acme.test/x"),
    ev("e6", "bounce", "cid@acme.test", revops_ref="key-cid"),
    ev("e7", "unsubscribe", "bob@acme.test", revops_ref="key-bob"),
    ev("e1", "delivered", "ann@acme.test", revops_ref="key-ann"),  # SendGrid redelivers
    ev("e8", "group_resubscribe", "ann@acme.test"),
    ev("e9", "open", "stranger@else.test", sg_message_id="nope.1"),
]


async def test_events_update_messages_contacts_and_metrics(cs_server, sent):
    async with connect(cs_server) as client:
        first = await client.call_tool("ingest_email_events", {"events": PAYLOAD})
        again = await client.call_tool("ingest_email_events", {"events": PAYLOAD})
        stats = await client.call_tool("get_email_stats", {})
    out = first.structured_content
    assert (out["received"], out["stored"], out["duplicates"], out["unmatched"]) == (10, 9, 1, 1)
    assert out["ignored"] == {"group_resubscribe": 1}
    assert (out["messages_updated"], out["contacts_unsubscribed"]) == (3, 1)
    assert again.structured_content["duplicates"] == 10
    assert again.structured_content["stored"] == 0
    assert count(cs_server, CsEmailEvent) == 9
    with cs_server.runtime.db.session() as s:
        ann, bob, cid = (s.get(CsEmailMessage, sent[n]) for n in ("ann", "bob", "cid"))
        assert (ann.status, ann.opens, ann.clicks) == ("delivered", 2, 1)
        assert (bob.status, cid.status) == ("delivered", "bounced")
        assert s.get(CoreContact, sent["bob_contact"]).unsubscribed_at is not None
        assert s.get(CoreContact, sent["ann_contact"]).unsubscribed_at is None
    metrics = stats.structured_content
    # REFERENCE.md: delivered = sent − bounces; rates over delivered; CTOR = unique clicks / unique opens.
    assert metrics == {
        "sent": 3,
        "bounces": 1,
        "delivered": 2,
        "unknown": 0,
        "unique_opens": 1,
        "unique_clicks": 1,
        "unsubscribes": 1,
        "complaints": 0,
        "open_rate": 0.5,
        "ctr": 0.5,
        "ctor": 1.0,
        "unsubscribe_rate": 0.5,
        "complaint_rate": 0.0,
    }


async def test_a_malformed_record_stores_nothing(cs_server, sent):
    bad = [PAYLOAD[0], {"sg_event_id": "x", "event": "open", "email": "ann@acme.test", "timestamp": "soon"}]
    async with connect(cs_server) as client:
        result = await client.call_tool("ingest_email_events", {"events": bad})
    err = error_of(result)
    assert (err["code"], err["field"]) == ("validation_error", "events[1].timestamp")
    assert count(cs_server, CsEmailEvent) == 0
    with cs_server.runtime.db.session() as s:
        assert s.get(CsEmailMessage, sent["ann"]).status == "accepted"


async def test_metrics_without_deliveries_are_null_not_zero(cs_server):
    async with connect(cs_server) as client:
        stats = await client.call_tool("get_email_stats", {})
    metrics = stats.structured_content
    assert metrics["sent"] == 0
    assert metrics["open_rate"] is None
    assert metrics["ctor"] is None


async def test_spam_report_unsubscribes_and_counts_as_complaint(cs_server, sent):
    async with connect(cs_server) as client:
        await client.call_tool(
            "ingest_email_events",
            {"events": [ev("s1", "delivered", "cid@acme.test"), ev("s2", "spamreport", "CID@acme.test")]},
        )
        stats = await client.call_tool("get_email_stats", {"client_ids": [sent["client"]]})
    with cs_server.runtime.db.session() as s:
        assert s.get(CoreContact, sent["cid_contact"]).unsubscribed_at is not None
    # Neither event names a message (no revops_ref / sg_message_id): stored, counted as unmatched.
    assert stats.structured_content["complaints"] == 0


async def test_out_of_range_timestamp_is_refused(cs_server, sent):
    bad = [ev("t1", "open", "ann@acme.test") | {"timestamp": 10**13}]
    async with connect(cs_server) as client:
        result = await client.call_tool("ingest_email_events", {"events": bad})
    assert error_of(result)["field"] == "events[0].timestamp"
    assert count(cs_server, CsEmailEvent) == 0


async def test_stats_filter_by_client_and_date(cs_server, sent):
    with cs_server.runtime.db.session(write=True) as s:
        other = add_client(s, "Other")
        contact = add_contact(s, other, "o@other.test")
        s.add(
            CsEmailMessage(
                client_id=other.id,
                contact_id=contact.id,
                email=contact.email,
                subject="s",
                body="b",
                dedupe_key="key-other",
                status="accepted",
                sent_at=at("2026-06-10"),
            )
        )
    async with connect(cs_server) as client:
        mine = await client.call_tool("get_email_stats", {"client_ids": [sent["client"]]})
        recent = await client.call_tool("get_email_stats", {"since": "2026-06-01"})
    assert mine.structured_content["sent"] == 3
    assert recent.structured_content["sent"] == 1


async def test_stats_are_readable_on_a_read_only_server(make_settings, cs_server, sent):
    from revops_cs.server import create_server

    readonly = create_server(make_settings(read_only=True))
    try:
        async with connect(readonly) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            stats = await call_ok(client, "get_email_stats", client_ids=[sent["client"]])
    finally:
        readonly.runtime.db.dispose()
    assert "get_email_stats" in names
    assert "ingest_email_events" not in names
    assert stats["sent"] == 3
