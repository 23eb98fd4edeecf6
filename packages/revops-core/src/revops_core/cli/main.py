"""`revops`: the operator's command line. Subcommands live in their own modules and import lazily,
so `revops --help` stays fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from revops_core.cli import approve_cmd, audit_cmd, db_cmd, doctor, install, keys_cmd, vault_cmd
from revops_core.cli.common import EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revops", description="RevOps Suite: set-up, keys, vault, audit, db."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (doctor, db_cmd, vault_cmd, audit_cmd, keys_cmd, approve_cmd, install):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 0 ok, 1 a problem was found, 2 bad input or configuration."""
    args = build_parser().parse_args(argv)
    from revops_core.errors import RevOpsError
    from revops_core.logs import configure_logging

    configure_logging("WARNING")  # stdout is the command's output; logs go to stderr

    try:
        return int(args.func(args))
    except RevOpsError as err:
        print(f"revops: {err.client_text()}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
