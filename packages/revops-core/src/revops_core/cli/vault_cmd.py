"""`revops vault set | list | rotate | delete`: vendor credentials, encrypted at rest.

Values can come from stdin (`FIELD=-`) so they never land in shell history or `ps` output; on a
terminal, `FIELD=-` asks for the value without echoing it. A secret typed inline (`api_token=abc`)
is stored but warned about. Field names are checked against the vendor's `VendorSpec` (the one the
vendor client reads), so a misspelt field is refused instead of stored where nothing reads it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from revops_core.cli.common import EXIT_OK, EXIT_USAGE, confirm, load_settings, open_db, print_json

if TYPE_CHECKING:
    from revops_core.vendor_kit import VendorSpec

SERVERS = ("cs", "sales", "marketing")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    vault = sub.add_parser("vault", help="Vendor credentials: set, list, rotate, retire, delete.")
    cmds = vault.add_subparsers(dest="vault_command", required=True)
    st = cmds.add_parser("set", help="Store fields of a credential (FIELD=VALUE, or FIELD=- to read stdin).")
    st.add_argument("provider", help="Vendor, e.g. zendesk, hubspot.")
    st.add_argument("assignments", nargs="+", metavar="FIELD=VALUE", help="Fields to store; '-' reads stdin.")
    st.add_argument(
        "--name", default="default", help="Credential name within the provider (default: default)."
    )
    st.add_argument("--server", default="*", help="Server it is for: sales, marketing, cs or * (default).")
    st.add_argument("--replace", action="store_true", help="Drop fields not given (default: keep them).")
    st.set_defaults(func=set_cmd)
    lst = cmds.add_parser("list", help="Stored credentials and their field names (never values).")
    lst.add_argument("--json", action="store_true", help="Machine-readable output.")
    lst.set_defaults(func=list_cmd)
    rot = cmds.add_parser("rotate", help="Activate a new key-encryption key and re-wrap every data key.")
    rot.set_defaults(func=rotate_cmd)
    ret = cmds.add_parser("retire", help="Remove an old key-encryption key once no secret uses it.")
    ret.add_argument("key_id", help="Key id printed by `vault rotate` as no longer used.")
    ret.set_defaults(func=retire_cmd)
    dele = cmds.add_parser("delete", help="Delete a credential (critical: asks for confirmation).")
    dele.add_argument("provider", help="Vendor of the credential.")
    dele.add_argument("--name", default="default", help="Credential name (default: default).")
    dele.add_argument("--server", default="*", help="Server it is for (default: *).")
    dele.add_argument("--yes", action="store_true", help="Do not ask; confirm the deletion.")
    dele.set_defaults(func=delete_cmd)


def known_specs(server: str = "*") -> dict[str, VendorSpec]:
    """provider → `VendorSpec` of every vendor the installed servers ship (`SPEC` in
    `revops_<server>.vendors.*`); only that server's vendors when `server` names one."""
    import importlib
    import pkgutil

    from revops_core.vendor_kit import VendorSpec

    found: dict[str, VendorSpec] = {}
    for name in SERVERS if server == "*" else (server,):
        try:
            package = importlib.import_module(f"revops_{name}.vendors")
        except ImportError:  # that server is not installed
            continue
        for info in pkgutil.iter_modules(package.__path__):
            spec = getattr(importlib.import_module(f"{package.__name__}.{info.name}"), "SPEC", None)
            if isinstance(spec, VendorSpec):
                found.setdefault(spec.provider, spec)
    return found


def check_fields(provider: str, names: list[str], *, server: str = "*") -> VendorSpec:
    """The vendor's spec, or `ValidationFailed` for a vendor or field no vendor client reads."""
    from revops_core.errors import ValidationFailed

    specs = known_specs(server)
    spec = specs.get(provider)
    where = "" if server == "*" else f" of server {server}"
    if spec is None:
        raise ValidationFailed(
            f"No vendor{where} is called {provider!r}.",
            field="provider",
            hint="Vendors: " + (", ".join(sorted(specs)) or "none installed") + ".",
        )
    allowed = spec.fields + spec.optional
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValidationFailed(
            f"{spec.title} has no field {', '.join(unknown)}.",
            field=unknown[0],
            hint=f"{spec.title} fields: {', '.join(allowed)}; e.g. `{spec.setup_command()}`.",
        )
    return spec


def _split(assignments: list[str]) -> list[tuple[str, str]]:
    from revops_core.errors import ValidationFailed

    pairs: list[tuple[str, str]] = []
    for item in assignments:
        field, sep, value = item.partition("=")
        if not sep or not field:
            raise ValidationFailed(
                "Expected FIELD=VALUE.", field="fields", hint="Write e.g. api_token=- and pipe the value in."
            )
        if field in (name for name, _ in pairs):
            raise ValidationFailed(f"Field {field} given twice.", field=field)
        pairs.append((field, value))
    return pairs


def parse_assignments(assignments: list[str], stdin_lines: list[str] | None = None) -> dict[str, str]:
    """`FIELD=VALUE` pairs; `FIELD=-` asks on a terminal (no echo), or takes the next line of stdin
    (one line per '-', in order)."""
    from revops_core.errors import ValidationFailed

    fields: dict[str, str] = {}
    lines = stdin_lines
    for field, value in _split(assignments):
        if value == "-":
            if lines is None and sys.stdin.isatty():
                value = getpass.getpass(f"{field}: ").strip()
            else:
                if lines is None:
                    lines = sys.stdin.read().splitlines()
                if not lines:
                    raise ValidationFailed(
                        f"No value on stdin for {field}.",
                        field=field,
                        hint="Pipe one line per FIELD=- in order.",
                    )
                value = lines.pop(0).strip()
        fields[field] = value
    return fields


def inline_secrets(assignments: list[str]) -> list[str]:
    """Fields whose secret value was typed on the command line (visible in shell history and `ps`)."""
    from revops_core.logs import is_secret_key

    return [field for field, value in _split(assignments) if value != "-" and is_secret_key(field)]


def set_cmd(args: argparse.Namespace) -> int:
    from revops_core.vault import Vault

    check_fields(args.provider, [field for field, _ in _split(args.assignments)], server=args.server)
    exposed = inline_secrets(args.assignments)
    fields = parse_assignments(args.assignments)
    settings = load_settings()
    info = Vault(open_db(settings), settings).set(
        args.provider, args.name, fields, server=args.server, replace=args.replace
    )
    print(f"Stored {info.provider}/{info.name} for server {info.server}: fields {', '.join(info.fields)}.")
    if exposed:
        names = ", ".join(exposed)
        print(
            f"Warning: the value of {names} was given on the command line, where shell history and "
            f"`ps` can show it. Prefer `{exposed[0]}=-`: it asks for the value (or reads it from "
            "stdin); consider rotating that secret and clearing the history entry.",
            file=sys.stderr,
        )
    return EXIT_OK


def list_cmd(args: argparse.Namespace) -> int:
    from revops_core.vault import Vault

    settings = load_settings()
    entries = Vault(open_db(settings), settings).list()
    if args.json:
        print_json([e.model_dump(mode="json") for e in entries])
        return EXIT_OK
    if not entries:
        print("The vault is empty. Store a credential with `revops vault set <provider> FIELD=-`.")
    for e in entries:
        print(
            f"{e.provider:<16} {e.name:<12} server={e.server:<10} fields={','.join(e.fields)}  key={e.key_id}"
        )
    return EXIT_OK


def rotate_cmd(args: argparse.Namespace) -> int:
    from revops_core.vault import Vault

    settings = load_settings()
    report = Vault(open_db(settings), settings).rotate()
    made = "new key created" if report.created else "key from REVOPS_MASTER_KEY"
    print(f"Active key {report.active_key_id} ({made}); {report.rewrapped} data key(s) re-wrapped.")
    if report.retirable_key_ids:
        print(f"No secret uses these keys any more: {', '.join(report.retirable_key_ids)}.")
    return EXIT_OK


def retire_cmd(args: argparse.Namespace) -> int:
    """Refused (conflict, exit 2) while any secret is still wrapped by the key."""
    from revops_core.vault import Vault

    settings = load_settings()
    report = Vault(open_db(settings), settings).retire(args.key_id)
    print(f"Retired key {report.key_id} (from the {report.removed_from.replace('_', ' ')}).")
    if report.next_step:
        print(report.next_step)
    return EXIT_OK


def delete_cmd(args: argparse.Namespace) -> int:
    from revops_core.vault import Vault

    settings = load_settings()
    what = f"{args.provider}/{args.name} (server {args.server})"
    if not confirm(
        f"Delete the credential {what}? Tools using it will stop reaching the vendor.", assume_yes=args.yes
    ):
        print("Nothing deleted.", file=sys.stderr)
        return EXIT_USAGE
    Vault(open_db(settings), settings).delete(args.provider, args.name, server=args.server)
    print(f"Deleted {what}.")
    return EXIT_OK
