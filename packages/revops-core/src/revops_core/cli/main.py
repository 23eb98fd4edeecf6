"""`revops` entry point (subcommands are added by their own modules)."""

from __future__ import annotations

import sys


def main() -> None:
    from revops_core.db import Database, upgrade
    from revops_core.settings import Settings

    if sys.argv[1:3] == ["db", "upgrade"]:
        for line in upgrade(Database(Settings())):
            print(line)
        sys.exit(0)
    print("usage: revops db upgrade", file=sys.stderr)
    sys.exit(2)
