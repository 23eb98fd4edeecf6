"""`revops audit verify | query | export | checkpoint | key | archive`: the hash-chained audit log."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from revops_core.cli.common import EXIT_FAILED, EXIT_OK, load_settings, open_db, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="Audit log: verify, query, export, checkpoint, key, archive.")
    cmds = audit.add_subparsers(dest="audit_command", required=True)
    verify = cmds.add_parser(
        "verify",
        help="Read-only: check every link, and every checkpoint against the pinned key and the "
        "witnesses; exit 1 if tampered.",
    )
    verify.add_argument("--json", action="store_true", help="Print the full report as JSON.")
    verify.set_defaults(func=verify_cmd)
    query = cmds.add_parser("query", help="Entries matching every filter, oldest first.")
    query.add_argument("--actor", help="Exact actor, e.g. key:rep or local:ana.")
    query.add_argument("--action", help="Exact action, e.g. cs.update_client.")
    query.add_argument("--target", help="Exact target, e.g. cs_client:42.")
    query.add_argument(
        "--since", type=parse_time, help="From this time (inclusive), ISO 8601; UTC if no zone."
    )
    query.add_argument("--until", type=parse_time, help="Before this time (exclusive), ISO 8601.")
    query.add_argument("--limit", type=int, default=50, help="Entries per page, 1–200 (default 50).")
    query.add_argument("--cursor", help="next_cursor from the previous page.")
    query.add_argument("--json", action="store_true", help="Print the page as JSON.")
    query.set_defaults(func=query_cmd)
    export = cmds.add_parser("export", help="Write entries as JSON lines (stdout or --output).")
    export.add_argument("--output", help="File to write (created or replaced); default stdout.")
    export.add_argument("--since", type=parse_time, help="From this time (inclusive).")
    export.add_argument("--until", type=parse_time, help="Before this time (exclusive).")
    export.set_defaults(func=export_cmd)
    checkpoint = cmds.add_parser(
        "checkpoint", help="Verify, sign a checkpoint of the head and publish it to the witnesses."
    )
    checkpoint.set_defaults(func=checkpoint_cmd)
    key = cmds.add_parser("key", help="Print the pinned checkpoint public key (for REVOPS_AUDIT_PUBLIC_KEY).")
    key.set_defaults(func=key_cmd)
    archive = cmds.add_parser(
        "archive", help="Move entries older than the retention period to a signed JSONL archive."
    )
    archive.add_argument(
        "--directory", help="Where archive files go (default: <data dir>/audit-archive).", default=None
    )
    archive.set_defaults(func=archive_cmd)


def parse_time(value: str) -> datetime:
    """ISO 8601 date or datetime; naive values are UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {value!r} (e.g. 2025-01-31T09:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def verify_cmd(args: argparse.Namespace) -> int:
    """Read-only: the pinned public key and the witnesses, never the vault; nothing is written."""
    from revops_core.audit_witness import verify_witnessed

    settings = load_settings()
    db = open_db(settings, migrate=False)  # verifying must not migrate (or otherwise write) either
    try:
        report = verify_witnessed(db, settings)
    finally:
        db.dispose()
    if args.json:
        print_json(report.model_dump(mode="json"))
    elif report.ok:
        print(f"OK: {report.entries_checked} entries verified up to seq {report.head_seq}.")
        if report.witnessed_seq is None:
            print(
                "WARNING: no checkpoint has been witnessed yet, so the end of the log is not protected. "
                "Servers checkpoint every "
                f"{settings.audit_checkpoint_every_entries} entries, every "
                f"{settings.audit_checkpoint_every_seconds:g} s and at shutdown; "
                "or run `revops audit checkpoint`."
            )
        else:
            unprotected = report.head_seq - report.witnessed_seq
            tail = f"; {unprotected} later entries not yet checkpointed" if unprotected > 0 else ""
            print(
                f"Latest witnessed checkpoint: seq {report.witnessed_seq}{tail}; "
                f"{report.checkpoints_checked} checkpoint(s) matched, signatures checked against the "
                f"pinned key; witnesses: {', '.join(report.witnesses)}."
            )
    else:
        print(f"TAMPERED: first_bad_seq={report.first_bad_seq} kind={report.kind}", file=sys.stderr)
        if report.message:
            print(report.message, file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def query_cmd(args: argparse.Namespace) -> int:
    from revops_core.audit_query import query

    page = query(
        open_db(load_settings()),
        actor=args.actor,
        action=args.action,
        target=args.target,
        since=args.since,
        until=args.until,
        limit=args.limit,
        cursor=args.cursor,
    )
    if args.json:
        print_json(page.model_dump(mode="json"))
        return EXIT_OK
    for r in page.items:
        when = r.ts.isoformat(timespec="seconds")
        print(f"{r.seq:>6}  {when}  {r.actor:<20} {r.action:<28} {r.target or '-'}")
    print(f"{len(page.items)} of {page.total} matching entries.")
    if page.next_cursor:
        print(f"More: --cursor {page.next_cursor}")
    return EXIT_OK


def export_cmd(args: argparse.Namespace) -> int:
    from revops_core.audit_query import export_jsonl

    db = open_db(load_settings())
    if args.output is None:
        count = export_jsonl(db, sys.stdout, since=args.since, until=args.until)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            count = export_jsonl(db, out, since=args.since, until=args.until)
    print(f"Exported {count} entries.", file=sys.stderr)
    return EXIT_OK


def checkpoint_cmd(args: argparse.Namespace) -> int:
    from revops_core.audit_checkpoint import checkpoint_and_publish

    settings = load_settings()
    checkpoint, publication = checkpoint_and_publish(open_db(settings), settings)
    assert checkpoint is not None
    print(
        f"Signed checkpoint at seq {checkpoint.seq} (hash {checkpoint.hash[:16]}…, key {checkpoint.key_id})."
    )
    for name in publication.published:
        print(f"Published to {name}.")
    for name, error in publication.failed:
        print(f"NOT published to {name}: {error}", file=sys.stderr)
    return EXIT_FAILED if publication.failed else EXIT_OK


def key_cmd(args: argparse.Namespace) -> int:
    from revops_core.audit_witness import encode_public_key, pinned_public_keys, public_key_file

    settings = load_settings()
    keys = pinned_public_keys(settings)
    if not keys:
        print(
            f"No checkpoint key is pinned yet ({public_key_file(settings)}); the first checkpoint pins it.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    source = "REVOPS_AUDIT_PUBLIC_KEY" if settings.audit_public_key else str(public_key_file(settings))
    print(f"# pinned by {source}; key id(s): {', '.join(sorted(keys))}")
    print(",".join(encode_public_key(k) for k in keys.values()))
    return EXIT_OK


def archive_cmd(args: argparse.Namespace) -> int:
    """Retention: the archived range stays verifiable through its signed segment record."""
    from pathlib import Path

    from revops_core.audit_checkpoint import archive_with_vault

    settings = load_settings()
    directory = Path(args.directory) if args.directory else settings.data_dir / "audit-archive"
    directory.mkdir(parents=True, exist_ok=True)
    segment = archive_with_vault(open_db(settings), settings, directory)
    if segment is None:
        print(f"Nothing to archive: no entry is older than {settings.audit_retention_days} days.")
    else:
        print(
            f"Archived entries {segment.first_seq}–{segment.last_seq} ({segment.entry_count}) to "
            f"{directory / segment.archive_name}; the signed segment keeps the chain verifiable."
        )
    return EXIT_OK
