"""`revops-marketing`: start the Marketing server (stdio by default)."""

from __future__ import annotations

import sys


def main() -> None:
    from revops_core.entrypoint import run
    from revops_marketing.server import create_server

    sys.exit(run("marketing", create_server))


if __name__ == "__main__":
    main()
