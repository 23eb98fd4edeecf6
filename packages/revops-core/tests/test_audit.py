"""The audit log's append, hashing, query and export, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select

from revops_core.audit import (
    GENESIS_HASH,
    AuditCheckpoint,
    AuditEntry,
    AuditInput,
    append,
    append_many,
    chain_hash,
    entry_payload,
    row_hash,
    verify,
)
from revops_core.audit_checkpoint import create_checkpoint
from revops_core.audit_query import export_jsonl, query
from revops_core.errors import IntegrityError, ValidationFailed
from revops_core.secret_values import REDACTED, Secret


def _entries(db):
    with db.session() as s:
        return list(s.exec(select(AuditEntry).order_by(AuditEntry.seq)))


def test_append_chains_from_genesis_with_dense_seq(db):
    with db.session(write=True) as s:
        first = append(
            s, actor="u:1", action="cs.create_client", target="cs_client:1", details={"name": "Acme"}
        )
    with db.session(write=True) as s:
        second = append(s, actor="u:2", action="cs.update_client", target="cs_client:1")
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    report = verify(db)
    assert report.ok
    assert (report.entries_checked, report.head_seq, report.head_hash) == (2, 2, second.hash)


def test_hash_is_sha256_over_rfc8785_json_of_the_stored_content(db):
    with db.session(write=True) as s:
        entry = append(
            s, actor="u:1", action="a", target=None, details={"b": [1, 2.5, "x"], "a": {"é": None}}
        )
    (stored,) = _entries(db)
    payload = entry_payload(
        tenant=stored.tenant,
        ts=stored.ts,
        actor=stored.actor,
        action=stored.action,
        target=stored.target,
        details=json.loads(stored.details),
    )
    assert stored.hash == entry.hash == chain_hash(GENESIS_HASH, payload)
    assert stored.details == rfc8785.dumps(json.loads(stored.details)).decode()  # stored canonically


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)


@given(actor=_text, action=_text, target=st.none() | _text, tenant=_text)
def test_fast_row_hash_equals_the_reference_definition(actor, action, target, tenant):
    ts = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    details = {"q": actor, "n": [1, -2, 3.25]}
    payload = entry_payload(tenant=tenant, ts=ts, actor=actor, action=action, target=target, details=details)
    canonical = rfc8785.dumps(details).decode()
    assert row_hash("f" * 64, tenant, ts, actor, action, target, canonical) == chain_hash("f" * 64, payload)


def test_secrets_are_redacted_before_hashing(db):
    with db.session(write=True) as s:
        append(
            s,
            actor="u:1",
            action="vault.set",
            details={"api_key": "sk_live_abc", "header": "Bearer abcdefghijklmnop", "token": Secret("t0p")},
        )
    (stored,) = _entries(db)
    for secret in ("sk_live_abc", "abcdefghijklmnop", "t0p"):
        assert secret not in stored.details
    assert json.loads(stored.details)["api_key"] == REDACTED
    assert verify(db).ok  # the hash covers the redacted text, so verification needs no secret


def test_rolled_back_append_leaves_no_entry_and_no_gap(db):
    def failing_change() -> None:
        with db.session(write=True) as s:
            append(s, actor="u:1", action="x")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    with db.session(write=True) as s:
        entry = append(s, actor="u:1", action="y")
    assert entry.seq == 1
    assert verify(db).ok


def test_empty_log_verifies_and_cannot_be_checkpointed(db):
    report = verify(db)
    assert (report.ok, report.entries_checked, report.head_seq, report.head_hash) == (
        True,
        0,
        0,
        GENESIS_HASH,
    )
    with pytest.raises(ValidationFailed):
        create_checkpoint(db, Ed25519PrivateKey.generate())


def test_checkpoint_refuses_to_sign_a_broken_chain(db):
    with db.session(write=True) as s:
        append_many(s, (AuditInput(actor="u", action=f"a{i}") for i in range(5)))
        row = s.exec(select(AuditEntry).where(AuditEntry.seq == 3)).one()
        row.actor = "attacker"
    with pytest.raises(IntegrityError) as caught:
        create_checkpoint(db, Ed25519PrivateKey.generate())
    assert caught.value.details == {"first_bad_seq": 3, "kind": "edited"}
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(AuditCheckpoint)).one() == 0


def test_checkpoint_signs_the_current_head(db):
    key = Ed25519PrivateKey.generate()
    with db.session(write=True) as s:
        append_many(s, (AuditInput(actor="u", action=f"a{i}") for i in range(3)))
    checkpoint = create_checkpoint(db, key)
    assert (checkpoint.seq, checkpoint.entry_count, checkpoint.hash) == (3, 3, _entries(db)[-1].hash)
    key.public_key().verify(
        __import__("base64").b64decode(checkpoint.signature), rfc8785.dumps(checkpoint.signed_document())
    )
    with db.session(write=True) as s:
        append(s, actor="u", action="later")
    report = verify(db, public_keys=[key.public_key()])
    assert (report.ok, report.checkpoints_checked, report.entries_checked) == (True, 1, 4)


# --------------------------------------------------------------------------- query and export


def _seed(db):
    items = [
        AuditInput(actor="alice", action="cs.update_client", target="cs_client:1"),
        AuditInput(actor="bob", action="cs.update_client", target="cs_client:2"),
        AuditInput(actor="alice", action="cs.delete_client", target="cs_client:2"),
        AuditInput(actor="carol", action="sales.create_deal", target="sales_deal:9"),
    ]
    with db.session(write=True) as s:
        append_many(s, items * 5)  # 20 entries, seq 1..20


def test_query_filters_by_actor_action_and_target(db):
    _seed(db)
    alice = query(db, actor="alice", limit=200)
    assert alice.total == 10
    assert {r.actor for r in alice.items} == {"alice"}
    both = query(db, actor="alice", action="cs.delete_client")
    assert (both.total, [r.seq for r in both.items]) == (5, [3, 7, 11, 15, 19])
    assert query(db, target="cs_client:2").total == 10
    assert query(db, actor="nobody").items == []


def test_query_pages_with_an_opaque_cursor(db):
    _seed(db)
    seen, cursor, pages = [], None, 0
    while True:
        page = query(db, action="cs.update_client", limit=3, cursor=cursor)
        seen += [r.seq for r in page.items]
        pages += 1
        assert page.total == 10
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 4
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 10


def test_query_by_time_range(db):
    _seed(db)
    entries = _entries(db)
    middle = entries[9].ts
    early = query(db, until=middle, limit=200)
    late = query(db, since=middle, limit=200)
    assert early.total + late.total == 20
    assert all(r.ts < middle for r in early.items)
    assert all(r.ts >= middle for r in late.items)
    assert query(db, since=entries[-1].ts + timedelta(seconds=1)).total == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"since": datetime(2026, 1, 1)}, "since"),  # naive on purpose
        ({"since": datetime(2026, 2, 1, tzinfo=UTC), "until": datetime(2026, 1, 1, tzinfo=UTC)}, "since"),
        ({"cursor": "not-a-cursor!"}, "cursor"),
    ],
)
def test_query_rejects_bad_input_naming_the_field(db, kwargs, field):
    with pytest.raises(ValidationFailed) as caught:
        query(db, **kwargs)
    assert caught.value.field == field


def test_export_jsonl_writes_every_entry_in_chain_order(db):
    _seed(db)
    out = io.StringIO()
    assert export_jsonl(db, out) == 20
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, 21))
    prev = GENESIS_HASH
    for line in lines:  # an export is independently checkable: each line re-hashes to its hash
        assert line["prev_hash"] == prev
        ts = datetime.fromisoformat(line["ts"])
        canonical = rfc8785.dumps(line["details"]).decode()
        args = (line["tenant"], ts, line["actor"], line["action"], line["target"], canonical)
        assert row_hash(prev, *args) == line["hash"]
        prev = line["hash"]


def test_export_jsonl_time_window(db):
    _seed(db)
    entries = _entries(db)
    out = io.StringIO()
    count = export_jsonl(db, out, since=entries[5].ts, until=entries[15].ts)
    seqs = [json.loads(line)["seq"] for line in out.getvalue().splitlines()]
    assert count == len(seqs)
    assert seqs == [e.seq for e in entries if entries[5].ts <= e.ts < entries[15].ts]


def test_vault_held_key_signs_and_pinned_key_verifies_checkpoints(db, settings):
    from revops_core.audit_checkpoint import checkpoint_with_vault
    from revops_core.audit_witness import verify_witnessed

    with db.session(write=True) as s:
        append_many(s, (AuditInput(actor="u", action=f"a{i}") for i in range(3)))
    checkpoint = checkpoint_with_vault(db, settings)
    # Reading the key from the vault and pinning its public half are audited, so the checkpoint
    # covers those entries too: vault.set (the key is generated) and audit.key_pinned.
    assert checkpoint.seq == 5
    report = verify_witnessed(db, settings)
    assert (report.ok, report.checkpoints_checked, report.signatures_checked) == (True, 1, True)
    assert report.witnessed_seq == 5
    create_checkpoint(db, Ed25519PrivateKey.generate())  # a key that is not the pinned one
    assert verify_witnessed(db, settings).kind == "bad_signature"
