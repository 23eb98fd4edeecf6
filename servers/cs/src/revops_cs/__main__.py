"""`revops-cs`: start the Customer Success server (stdio by default)."""

from __future__ import annotations

import sys


def main() -> None:
    from revops_core.entrypoint import run
    from revops_cs.server import create_server

    sys.exit(run("cs", create_server))


if __name__ == "__main__":
    main()
