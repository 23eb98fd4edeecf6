"""Retention archives old audit entries to signed JSONL segments without breaking verification."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, text
from sqlmodel import select

from revops_core.audit import AuditEntry, AuditInput, AuditSegment, append, append_many, verify
from revops_core.audit_checkpoint import archive_old_entries, create_checkpoint, verify_archive
from revops_core.db import utcnow
from revops_core.errors import IntegrityError


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    return tmp_path / "archive"  # tmp_path itself also holds the SQLite data dir


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _append(db, count: int, actor: str = "u") -> None:
    with db.session(write=True) as s:
        append_many(s, (AuditInput(actor=actor, action=f"a{i}", details={"i": i}) for i in range(count)))


def _old_then_new(db, old: int, new: int):
    """Append `old` entries, note the time, append `new` more; return a 'now' that makes the first batch old.

    Retention takes `now` as a parameter, so this is a fake clock: no sleeping, no real waiting.
    """
    _append(db, old, actor="old")
    boundary = utcnow()
    _append(db, new, actor="new")
    return boundary + timedelta(days=400)


def _live_count(db) -> int:
    with db.session() as s:
        return s.exec(select(func.count()).select_from(AuditEntry)).one()


def test_archives_old_prefix_and_verification_continues_from_the_segment(db, key, archive_dir: Path):
    now = _old_then_new(db, old=30, new=12)
    segment = archive_old_entries(db, key, archive_dir, older_than_days=400, now=now)
    assert segment is not None
    assert (segment.first_seq, segment.last_seq, segment.entry_count) == (1, 30, 30)
    assert _live_count(db) == 12

    report = verify(db, public_keys=[key.public_key()])
    assert report.ok, report.message
    assert (report.start_seq, report.entries_checked, report.head_seq) == (31, 12, 42)
    assert [(a.first_seq, a.last_seq, a.archive_name) for a in report.archived] == [
        (1, 30, "audit-000000000001-000000000030.jsonl")
    ]

    archive = archive_dir / segment.archive_name
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, 31))
    assert {line["actor"] for line in lines} == {"old"}
    assert verify_archive(archive, segment, public_keys=[key.public_key()]).ok


def test_appends_continue_the_chain_after_everything_was_archived(db, key, archive_dir: Path):
    _append(db, 5)
    segment = archive_old_entries(
        db, key, archive_dir, older_than_days=0, now=utcnow() + timedelta(seconds=1)
    )
    assert segment is not None
    assert _live_count(db) == 0
    with db.session(write=True) as s:
        entry = append(s, actor="u", action="after")
    assert (entry.seq, entry.prev_hash) == (6, segment.last_hash)
    report = verify(db, public_keys=[key.public_key()])
    assert (report.ok, report.start_seq, report.head_seq) == (True, 6, 6)


def test_second_archive_chains_onto_the_first(db, key, archive_dir: Path):
    now = _old_then_new(db, old=10, new=10)
    first = archive_old_entries(db, key, archive_dir, older_than_days=400, now=now)
    second = archive_old_entries(db, key, archive_dir, older_than_days=0, now=now)
    assert first is not None
    assert second is not None
    assert (second.first_seq, second.last_seq, second.first_prev_hash) == (11, 20, first.last_hash)
    report = verify(db, public_keys=[key.public_key()])
    assert report.ok
    assert [a.last_seq for a in report.archived] == [10, 20]


def test_nothing_old_enough_archives_nothing(db, key, archive_dir: Path):
    _append(db, 3)
    assert archive_old_entries(db, key, archive_dir, now=utcnow()) is None  # default: settings' 400 days
    assert _live_count(db) == 3
    assert not archive_dir.exists()


def test_refuses_to_archive_a_broken_chain(db, key, archive_dir: Path):
    now = _old_then_new(db, old=5, new=5)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE core_audit SET actor = 'attacker' WHERE seq = 2"))
    with pytest.raises(IntegrityError):
        archive_old_entries(db, key, archive_dir, older_than_days=400, now=now)
    assert _live_count(db) == 10
    assert not archive_dir.exists()


def test_checkpoints_inside_the_archived_range_no_longer_bind_the_live_chain(db, key, archive_dir: Path):
    _append(db, 5, actor="old")
    create_checkpoint(db, key)
    boundary = utcnow()
    _append(db, 5, actor="new")
    create_checkpoint(db, key)
    archive_old_entries(db, key, archive_dir, older_than_days=400, now=boundary + timedelta(days=400))
    report = verify(db, public_keys=[key.public_key()])
    assert (report.ok, report.checkpoints_checked) == (True, 1)


def test_deleting_the_first_live_entry_after_a_segment_is_reported(db, key, archive_dir: Path):
    now = _old_then_new(db, old=5, new=5)
    archive_old_entries(db, key, archive_dir, older_than_days=400, now=now)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM core_audit WHERE seq = 6"))
    report = verify(db, public_keys=[key.public_key()])
    assert (report.ok, report.first_bad_seq, report.kind) == (False, 6, "deleted")


def test_forged_or_removed_segment_record_is_reported(db, key, archive_dir: Path):
    now = _old_then_new(db, old=5, new=5)
    archive_old_entries(db, key, archive_dir, older_than_days=400, now=now)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE core_audit_segment SET last_seq = 4, entry_count = 4"))
    assert verify(db, public_keys=[key.public_key()]).kind == "bad_signature"
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM core_audit_segment"))
    # Without the segment the live chain starts at 6 with a non-genesis link: entries 1..5 are missing.
    report = verify(db, public_keys=[key.public_key()])
    assert (report.first_bad_seq, report.kind) == (1, "deleted")


def _archive(db, key, archive_dir: Path) -> tuple[Path, AuditSegment]:
    now = _old_then_new(db, old=20, new=2)
    segment = archive_old_entries(db, key, archive_dir, older_than_days=400, now=now)
    assert segment is not None
    return archive_dir / segment.archive_name, segment


def _rewrite_lines(path: Path, change) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(line) + "\n" for line in change(lines)))


def test_archive_file_edit_is_reported_at_its_seq(db, key, archive_dir: Path):
    path, segment = _archive(db, key, archive_dir)

    def edit(lines):
        lines[6]["details"] = {"i": 999}
        return lines

    _rewrite_lines(path, edit)
    report = verify_archive(path, segment, public_keys=[key.public_key()])
    assert (report.ok, report.first_bad_seq, report.kind) == (False, 7, "edited")


def test_archive_file_deletions_are_reported(db, key, archive_dir: Path):
    path, segment = _archive(db, key, archive_dir)
    original = path.read_text()
    _rewrite_lines(path, lambda lines: lines[:4] + lines[5:])
    assert verify_archive(path, segment).model_dump(include={"first_bad_seq", "kind"}) == {
        "first_bad_seq": 5,
        "kind": "deleted",
    }
    path.write_text(original)
    _rewrite_lines(path, lambda lines: lines[:-3])  # the tail: only the segment's end hash shows it
    assert verify_archive(path, segment).kind == "truncated"


def test_archive_file_reformatting_is_reported_even_with_a_valid_chain(db, key, archive_dir: Path):
    path, segment = _archive(db, key, archive_dir)
    _rewrite_lines(path, lambda lines: lines)  # same entries, different bytes
    report = verify_archive(path, segment)
    assert (report.ok, report.kind, report.entries_checked) == (False, "segment_mismatch", 20)


def test_archive_against_a_forged_segment_signature(db, key, archive_dir: Path):
    path, segment = _archive(db, key, archive_dir)
    assert verify_archive(path, segment, public_keys=[Ed25519PrivateKey.generate().public_key()]).kind == (
        "bad_signature"
    )
    assert verify_archive(archive_dir / "missing.jsonl", segment).kind == "deleted"
