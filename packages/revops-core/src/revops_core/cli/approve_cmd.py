"""`revops approve <plan_id>`: out-of-band consent for a critical plan, by the person at this terminal."""

from __future__ import annotations

import argparse

from revops_core.cli.common import EXIT_OK, load_settings, local_user, open_db


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    approve = sub.add_parser("approve", help="Approve a critical plan (the model cannot approve itself).")
    approve.add_argument("plan_id", help="The plan_id a critical tool returned.")
    approve.set_defaults(func=approve_cmd)


def approve_cmd(args: argparse.Namespace) -> int:
    from revops_core.guards import approve

    settings = load_settings()
    plan = approve(open_db(settings), args.plan_id, local_user(), tenant=settings.tenant)
    print(f"Approved plan {plan.plan_id} for {plan.tool}: {plan.summary}")
    print("Now call the tool again with the same arguments and confirm=<plan_id>.")
    return EXIT_OK
