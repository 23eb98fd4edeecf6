"""Tampering with a 10 000-entry audit chain is reported at the tampered row, with what was done.

The chain is built once per backend (bulk append, two signed checkpoints at 5000 and 10000) and a
pristine copy of the table restores it after every test, so each case starts from a valid chain.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, event, text

from revops_core.audit import AuditInput, append_many, row_hash, verify
from revops_core.audit_checkpoint import create_checkpoint
from revops_core.db import Database, upgrade
from revops_core.settings import Settings
from revops_core.testing import PgSchema, postgres_url

N = 10_000
FIRST, MIDDLE, LAST = 1, 5_000, N
COLUMNS = "tenant, ts, actor, action, target, details, prev_hash, hash"

# ~25 full verifications of 10 000 entries per backend, plus restoring the table after each.
pytestmark = pytest.mark.slow


@dataclass
class Chain:
    db: Database
    key: Ed25519PrivateKey

    def verify(self) -> Any:
        return verify(self.db, public_keys=[self.key.public_key()])


def _items(start: int, count: int) -> Iterator[AuditInput]:
    for i in range(start, start + count):
        yield AuditInput(
            actor=f"user:{i % 7}",
            action="cs.update_client",
            target=f"cs_client:{i}",
            details={"arguments": {"client_id": i, "note": "renewal call ✓"}},
        )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def chain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    schema = PgSchema(postgres_url()) if request.param == "postgres" else None
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("chain"),
        database_url=schema.url if schema else None,
        redis_url=None,
        master_key=None,
        auto_migrate=True,
    )
    db = Database(settings)
    try:
        upgrade(db)
        key = Ed25519PrivateKey.generate()
        for start in (1, MIDDLE + 1):
            with db.session(write=True) as s:
                append_many(s, _items(start, N // 2))
            create_checkpoint(db, key)
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE pristine_audit AS SELECT * FROM core_audit"))
            conn.execute(text("CREATE TABLE pristine_checkpoint AS SELECT * FROM core_audit_checkpoint"))
        yield Chain(db, key)
    finally:
        db.dispose()
        if schema is not None:
            schema.drop()


@pytest.fixture
def tampered(chain: Chain) -> Iterator[Chain]:
    """The chain, put back exactly as built once the test is done."""
    yield chain
    with chain.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM core_audit"))
        conn.execute(
            text(f"INSERT INTO core_audit (seq, {COLUMNS}) SELECT seq, {COLUMNS} FROM pristine_audit")
        )
        conn.execute(text("DELETE FROM core_audit_checkpoint"))
        conn.execute(text("INSERT INTO core_audit_checkpoint SELECT * FROM pristine_checkpoint"))


# --------------------------------------------------------------------------- tampering operations


def _row(conn: Connection, seq: int) -> dict[str, Any]:
    row = conn.execute(text(f"SELECT {COLUMNS} FROM core_audit WHERE seq = :s"), {"s": seq}).mappings().one()
    return dict(row)


def _set(conn: Connection, seq: int, values: dict[str, Any]) -> None:
    assignments = ", ".join(f"{k} = :{k}" for k in values)
    conn.execute(text(f"UPDATE core_audit SET {assignments} WHERE seq = :seq"), {**values, "seq": seq})


def delete_row(conn: Connection, i: int) -> None:
    conn.execute(text("DELETE FROM core_audit WHERE seq = :s"), {"s": i})


def edit_details(conn: Connection, i: int) -> None:
    _set(conn, i, {"details": '{"arguments":{"client_id":1,"note":"forged"}}'})


def edit_actor(conn: Connection, i: int) -> None:
    _set(conn, i, {"actor": "attacker"})


def insert_forged(conn: Connection, i: int) -> None:
    """Put a forged entry at position i with a correct hash, shifting the rest up by one.

    The displaced entry is relinked to the forgery so UNIQUE(prev_hash) still holds — the most
    a forger can do without recomputing the rest of the chain.
    """
    displaced = _row(conn, i)
    # Two steps: a single `seq = seq + 1` can collide on the primary key mid-update on PostgreSQL.
    conn.execute(text("UPDATE core_audit SET seq = -(seq + 1) WHERE seq >= :i"), {"i": i})
    conn.execute(text("UPDATE core_audit SET seq = -seq WHERE seq < 0"))
    forged = {**displaced, "actor": "attacker", "details": '{"arguments":{"grant":"admin"}}'}
    forged["hash"] = row_hash(
        forged["prev_hash"],
        forged["tenant"],
        _aware(forged["ts"]),
        forged["actor"],
        forged["action"],
        forged["target"],
        forged["details"],
    )
    _set(conn, i + 1, {"prev_hash": forged["hash"]})
    conn.execute(
        text(f"INSERT INTO core_audit (seq, {COLUMNS}) VALUES (:seq, {', '.join(':' + c for c in forged)})"),
        {**forged, "seq": i},
    )


def _aware(ts: Any) -> Any:
    from datetime import UTC, datetime

    if isinstance(ts, str):  # SQLite returns the stored text through a raw query
        ts = datetime.fromisoformat(ts)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _partner(i: int) -> int:
    return i - 1 if i == LAST else i + 1


def swap_rows(conn: Connection, i: int) -> None:
    """Swap two whole entries (content and hashes): the rows are in the wrong order."""
    j = _partner(i)
    a, b = _row(conn, i), _row(conn, j)
    _set(conn, j, {"prev_hash": "tmp-prev", "hash": "tmp-hash"})  # keep UNIQUE happy mid-swap
    _set(conn, i, b)
    _set(conn, j, a)


def swap_content(conn: Connection, i: int) -> None:
    """Swap two entries' content but leave the hash columns in place."""
    j = _partner(i)
    content = ("ts", "actor", "action", "target", "details")
    a, b = _row(conn, i), _row(conn, j)
    _set(conn, i, {k: b[k] for k in content})
    _set(conn, j, {k: a[k] for k in content})


Tamper = Callable[[Connection, int], None]
CASES: list[tuple[Tamper, int, int, str]] = [
    # (operation, tampered position, expected first_bad_seq, expected kind)
    (delete_row, FIRST, FIRST, "deleted"),
    (delete_row, MIDDLE, MIDDLE, "deleted"),
    (delete_row, LAST, LAST, "truncated"),  # only the checkpoint at 10000 can see it
    (edit_details, FIRST, FIRST, "edited"),
    (edit_details, MIDDLE, MIDDLE, "edited"),
    (edit_details, LAST, LAST, "edited"),
    (edit_actor, FIRST, FIRST, "edited"),
    (edit_actor, MIDDLE, MIDDLE, "edited"),
    (edit_actor, LAST, LAST, "edited"),
    (insert_forged, FIRST, FIRST, "inserted"),
    (insert_forged, MIDDLE, MIDDLE, "inserted"),
    (insert_forged, LAST, LAST, "inserted"),
    (swap_rows, FIRST, FIRST, "reordered"),
    (swap_rows, MIDDLE, MIDDLE, "reordered"),
    (swap_rows, LAST, LAST - 1, "reordered"),  # swapped with its predecessor, which comes first
    (swap_content, FIRST, FIRST, "reordered"),
    (swap_content, MIDDLE, MIDDLE, "reordered"),
    (swap_content, LAST, LAST - 1, "reordered"),
]


def test_untouched_chain_verifies(chain: Chain) -> None:
    report = chain.verify()
    assert report.ok, report
    assert (report.entries_checked, report.head_seq, report.checkpoints_checked) == (N, N, 2)
    assert report.signatures_checked


@pytest.mark.parametrize(
    ("tamper", "position", "bad_seq", "kind"),
    CASES,
    ids=[f"{op.__name__}-{pos}" for op, pos, _, _ in CASES],
)
def test_tampering_is_reported_at_its_index(
    tampered: Chain, tamper: Tamper, position: int, bad_seq: int, kind: str
) -> None:
    with tampered.db.engine.begin() as conn:
        tamper(conn, position)
    report = tampered.verify()
    assert not report.ok
    assert (report.first_bad_seq, report.kind) == (bad_seq, kind), report.message
    assert report.entries_checked == bad_seq - 1


def test_truncating_the_tail_is_caught_by_the_checkpoint(tampered: Chain) -> None:
    with tampered.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM core_audit WHERE seq > :s"), {"s": N - 3})
    report = tampered.verify()
    assert (report.ok, report.first_bad_seq, report.kind) == (False, N - 2, "truncated")
    assert report.head_seq == N - 3


def test_same_length_rewrite_of_the_tail_is_caught_by_the_checkpoint(tampered: Chain) -> None:
    k = 5
    with tampered.db.engine.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM core_audit WHERE seq = :s"), {"s": N - k}).scalar_one()
        # Recompute a perfectly consistent chain for the last k entries: links and hashes all check.
        for seq in range(N - k + 1, N + 1):
            row = {**_row(conn, seq), "actor": "attacker", "prev_hash": f"tmp{seq}", "hash": f"tmpH{seq}"}
            _set(conn, seq, {"prev_hash": row["prev_hash"], "hash": row["hash"]})
            new_hash = row_hash(
                prev,
                row["tenant"],
                _aware(row["ts"]),
                "attacker",
                row["action"],
                row["target"],
                row["details"],
            )
            _set(conn, seq, {"actor": "attacker", "prev_hash": prev, "hash": new_hash})
            prev = new_hash
    report = tampered.verify()
    assert (report.ok, report.first_bad_seq, report.kind) == (False, N, "rewritten")
    assert report.suspect_from_seq == MIDDLE + 1  # the checkpoint at 5000 still vouches for 1..5000
    assert report.entries_checked == N - 1  # every link holds: only the checkpoint reveals it


def test_forged_checkpoint_signature_is_caught(tampered: Chain) -> None:
    with tampered.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM core_audit WHERE seq > :s"), {"s": N - 3})
        # Move the checkpoint back to the truncated head, keeping the old signature.
        head = conn.execute(text("SELECT hash FROM core_audit WHERE seq = :s"), {"s": N - 3}).scalar_one()
        conn.execute(
            text("UPDATE core_audit_checkpoint SET seq = :s, entry_count = :s, hash = :h WHERE seq = :n"),
            {"s": N - 3, "h": head, "n": N},
        )
    report = tampered.verify()
    assert (report.ok, report.first_bad_seq, report.kind) == (False, N - 3, "bad_signature")
    assert "signature does not match" in (report.message or "")


def test_checkpoint_signed_by_an_untrusted_key_is_caught(tampered: Chain) -> None:
    create_checkpoint(tampered.db, Ed25519PrivateKey.generate())
    report = tampered.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "bad_signature", N)
    assert "not a trusted key" in (report.message or "")
    # Trusting both keys, the same log verifies.
    other = verify(tampered.db, public_keys=None)
    assert other.ok
    assert not other.signatures_checked


def test_garbage_signature_is_reported_not_raised(tampered: Chain) -> None:
    with tampered.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE core_audit_checkpoint SET signature = :g WHERE seq = :n"),
            {"g": base64.b64encode(b"short").decode(), "n": N},
        )
    assert tampered.verify().kind == "bad_signature"


def test_verify_reads_in_batches(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are fetched in keyset batches (memory stays flat), not in one result of N rows."""
    import revops_core.audit as audit

    monkeypatch.setattr(audit, "BATCH_SIZE", 777)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM core_audit " in statement and "LIMIT" in statement:
            statements.append(statement)

    event.listen(chain.db.engine, "before_cursor_execute", record)
    try:
        report = chain.verify()
    finally:
        event.remove(chain.db.engine, "before_cursor_execute", record)
    assert report.ok
    assert len(statements) == N // 777 + 1
