"""`revops keys create | list | revoke`: API keys for the HTTP transport.

Creating and revoking are audited under the operator (`REVOPS_ACTOR`, default `local:$USER`).
"""

from __future__ import annotations

import argparse

from revops_core.cli.common import EXIT_OK, load_settings, open_db, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="API keys for HTTP clients: create, list, revoke.")
    cmds = keys.add_subparsers(dest="keys_command", required=True)
    create = cmds.add_parser("create", help="Create a key; the raw key is printed once, never again.")
    create.add_argument(
        "--name", required=True, help="Who or what uses the key; unique (the audit log records it)."
    )
    create.add_argument(
        "--role", required=True, choices=["viewer", "member", "admin"], help="Role of the key."
    )
    create.set_defaults(func=create_cmd)
    lst = cmds.add_parser("list", help="Keys with their role and status (never the key itself).")
    lst.add_argument("--json", action="store_true", help="Machine-readable output.")
    lst.set_defaults(func=list_cmd)
    revoke = cmds.add_parser("revoke", help="Revoke a key by id; it stops working on the next request.")
    revoke.add_argument("key_id", type=int, help="Id from `revops keys list`.")
    revoke.set_defaults(func=revoke_cmd)


def create_cmd(args: argparse.Namespace) -> int:
    from revops_core.apikeys import create_key
    from revops_core.errors import ValidationFailed

    name = args.name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("The key name must be 1–100 characters.", field="name")
    settings = load_settings()
    key, raw = create_key(open_db(settings), name=name, role=args.role, actor=settings.actor)
    print(f"Created key {key.id} ({key.name}, role {key.role}). Store it now; it is not shown again:")
    print(raw)
    return EXIT_OK


def list_cmd(args: argparse.Namespace) -> int:
    from revops_core.apikeys import list_keys

    keys = list_keys(open_db(load_settings()))
    rows = [
        {
            "id": k.id,
            "name": k.name,
            "role": k.role,
            "prefix": k.key_prefix,
            "created_at": k.created_at.isoformat(),
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        }
        for k in keys
    ]
    if args.json:
        print_json(rows)
        return EXIT_OK
    if not rows:
        print("No API keys. Create one with `revops keys create --name N --role viewer|member|admin`.")
    for r in rows:
        status = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        print(f"{r['id']:>4}  {r['name']:<24} {r['role']:<7} {r['prefix']}…  {status}")
    return EXIT_OK


def revoke_cmd(args: argparse.Namespace) -> int:
    from revops_core.apikeys import revoke_key

    settings = load_settings()
    key = revoke_key(open_db(settings), args.key_id, actor=settings.actor)
    print(f"Revoked key {key.id} ({key.name}).")
    return EXIT_OK
