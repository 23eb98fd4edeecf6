"""`revops-sales`: start the Sales server (stdio by default)."""

from __future__ import annotations

import sys


def main() -> None:
    from revops_core.entrypoint import run
    from revops_sales.server import create_server

    sys.exit(run("sales", create_server))


if __name__ == "__main__":
    main()
