"""`make demo`: the suite on the embedded SQLite default, driven over MCP like Claude Desktop does.

1. Builds a believable 500-client CS portfolio from a fixed seed (same seed → same data).
2. Starts each server over stdio, lists its tools and calls `server_info`.
3. Asks the CS server real questions and prints what came back — every number is computed by the
   server from the stored rows.
4. Shows plan → confirm on a destructive tool, then verifies the audit chain with `revops audit verify`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import TextContent

from revops_suite.servers import SERVER_NAMES, console_script

SEED = 42
CLIENTS = int(os.environ.get("REVOPS_DEMO_CLIENTS", "500"))  # smaller in the demo's own test
DEALS = int(os.environ.get("REVOPS_DEMO_DEALS", "3000"))


def _money(minor: int | float, currency: str = "USD") -> str:
    return f"{minor / 100:,.0f} {currency}"


def _heading(text: str) -> None:
    print(f"\n\033[1m{text}\033[0m")


def _bin(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOPS_") and k != "DATABASE_URL"}
    env.update({"REVOPS_DATA_DIR": str(data_dir), "REVOPS_ACTOR": "demo:user", "REVOPS_LOG_LEVEL": "WARNING"})
    return env


def build_portfolio(data_dir: Path, as_of: date) -> None:
    from sqlalchemy import func
    from sqlmodel import select

    from revops_core.db import Database, upgrade
    from revops_core.settings import Settings
    from revops_cs.demo import generate_cs_demo
    from revops_cs.models.clients import CsClient
    from revops_cs.models.feedback import CsFeedback
    from revops_cs.models.health import CsHealthSnapshot
    from revops_cs.models.support import CsTicket
    from revops_cs.models.usage import CsUsageEvent
    from revops_sales.demo import generate_sales_demo

    for stale in [*data_dir.glob("revops.db*"), *data_dir.parent.glob(f"{data_dir.name}-witness/*")]:
        stale.unlink()
    settings = Settings(data_dir=data_dir, database_url=None, redis_url=None, master_key=None)
    db = Database(settings)
    upgrade(db)
    with db.session(write=True) as s:
        generate_cs_demo(s, seed=SEED, clients=CLIENTS, as_of=as_of)
    with db.session(write=True) as s:  # the bundle shares one database: Sales writes beside CS
        sales = generate_sales_demo(s, seed=SEED, deals=DEALS, as_of=as_of)
    with db.session() as s:
        counts = {
            label: s.exec(select(func.count()).select_from(model)).one()
            for label, model in (
                ("clients", CsClient),
                ("usage events", CsUsageEvent),
                ("tickets", CsTicket),
                ("survey answers", CsFeedback),
                ("health snapshots", CsHealthSnapshot),
            )
        }
    db.dispose()
    print("  CS: " + " · ".join(f"{n:,} {label}" for label, n in counts.items()))
    print(
        f"  Sales: {sales.reps} reps · {sales.pipelines} pipelines · {sales.deals:,} deals with "
        f"{sales.stage_moves:,} stage moves · {sales.activities:,} activities · {sales.quotas} quotas · "
        f"{sales.leads} leads"
    )


async def tour_servers(data_dir: Path) -> None:
    for name in SERVER_NAMES:
        params = StdioServerParameters(command=_bin(console_script(name)), env=_env(data_dir))
        async with Client(params, mode="legacy") as client:
            tools = (await client.list_tools()).tools
            info = (await client.call_tool("server_info", {})).structured_content or {}
        print(
            f"  revops-{name}: {len(tools)} tools in {len(info.get('toolsets', []))} toolsets, "
            f"database {info.get('database')}, schema {info.get('schema_versions')}"
        )


async def _call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    if result.is_error:
        first = result.content[0]
        raise RuntimeError(f"{tool} failed: {first.text if isinstance(first, TextContent) else first}")
    return dict(result.structured_content or {})


async def ask_cs(data_dir: Path, as_of: date) -> None:
    # Every toolset: the walkthrough reaches beyond the default ones (renewals, support, feedback).
    params = StdioServerParameters(command=_bin("revops-cs"), args=["--toolsets", "all"], env=_env(data_dir))
    async with Client(params, mode="legacy") as cs:
        _heading("Q: How healthy is the portfolio?  → generate_health_report")
        report = await _call(cs, "generate_health_report", {"as_of": as_of.isoformat()})
        for band in report["bands"]:
            arr = ", ".join(_money(v, c) for c, v in band["arr_minor"].items()) or "—"
            print(f"  {band['band']:<10} {band['clients']:>4} clients   ARR {arr}")
        at_risk = ", ".join(_money(v, c) for c, v in report["arr_at_risk_minor"].items())
        print(f"  average score {report['average_score']} · ARR at risk {at_risk}")

        _heading("Q: Who is most likely to churn, and why?  → identify_churn_risk")
        risk = await _call(cs, "identify_churn_risk", {"limit": 3, "as_of": as_of.isoformat()})
        print(f"  {risk['evaluated']} live clients evaluated: {risk['counts']}")
        for c in risk["clients"][:3]:
            print(f"  {c['name']} (id {c['client_id']}): {c['score']} points, {c['level']} risk")
            for rule in c["rules"]:
                if rule["points"]:
                    print(f"    +{rule['points']:<3} {rule['rule']}: {rule['evidence']}")

        _heading("Q: Which renewals are due in the next 90 days, and what will they bring?  → track_renewals")
        renewals = await _call(
            cs, "track_renewals", {"within_days": 90, "as_of": as_of.isoformat(), "limit": 5}
        )
        for f in renewals["forecast"]:
            print(
                f"  renewing ARR {_money(f['renewing_arr_minor'], f['currency'])}, expected "
                f"{_money(f['expected_arr_minor'], f['currency'])} (probability by health band)"
            )
        for r in renewals["renewals"][:5]:
            print(
                f"    {r['renewal_date']}  {r['name']:<28} ARR {_money(r['arr_minor'], r['currency']):>12}"
                f"  health {r['health_band'] or '—':<9} churn risk {r['risk_level']}"
            )

        _heading("Q: What are customers telling us?  → analyze_feedback_sentiment")
        fb = await _call(cs, "analyze_feedback_sentiment", {"as_of": as_of.isoformat(), "top": 3})
        nps, csat, ces = fb["surveys"]["nps"], fb["surveys"]["csat"], fb["surveys"]["ces"]
        print(
            f"  NPS {nps['score']:+.1f} ± {nps['margin_of_error']:.1f} (n={nps['responses']}) · "
            f"CSAT {csat['score']:.1f}% · CES {ces['score']:.2f}/7 · "
            f"comments {fb['sentiment']['positive']} positive / {fb['sentiment']['negative']} negative"
        )

        _heading("Q: Are we meeting support SLAs?  → analyze_support_performance")
        sup = await _call(cs, "analyze_support_performance", {"as_of": as_of.isoformat()})
        print(
            f"  {sup['tickets']} tickets since {sup['start_date']}: median first response "
            f"{sup['first_response']['median_min']:.0f} min, "
            f"median resolution {sup['resolution']['median_min']:.0f} min"
        )
        for row in sup["sla"]:
            print(
                f"    {row['priority']:<7} first-response SLA met {row['first_response_compliance']:.1f}%"
                f" · resolution SLA met {row['resolution_compliance']:.1f}%"
            )

        _heading("Q: What was net revenue retention over the last 12 months?  → analyze_revenue_retention")
        end = as_of.replace(day=1)
        start = (end - timedelta(days=365)).replace(day=1)
        rr = await _call(
            cs, "analyze_revenue_retention", {"start_month": start.isoformat(), "end_month": end.isoformat()}
        )
        print(
            f"  NRR {rr['nrr'] * 100:.1f}% · GRR {rr['grr'] * 100:.1f}% over {rr['accounts']} accounts "
            f"active in {start:%Y-%m} ({rr['churned_accounts']} churned) · "
            f"LTV {_money(rr['ltv']['ltv_minor'])}"
        )

        _heading("Q: Where can we expand?  → identify_upsell_opportunities")
        ups = await _call(cs, "identify_upsell_opportunities", {"limit": 2, "as_of": as_of.isoformat()})
        for o in ups["opportunities"][:2]:
            print(f"  {o['name']}:")
            for sig in o["signals"]:
                print(f"    {sig['motion']:<10} {sig['evidence']}")

        _heading("Plan → confirm: archiving a client changes nothing until confirmed  → archive_client")
        victim = risk["clients"][0]["client_id"]
        plan = (await _call(cs, "archive_client", {"client_id": victim}))["plan"]
        print(f"  plan {plan['plan_id'][:12]}…: {plan['summary']} (reversible: {plan['reversible']})")
        done = await _call(cs, "archive_client", {"client_id": victim, "confirm": plan["plan_id"]})
        print(f"  confirmed ({done['status']}) → archived: {done['result']['archived']}")
        plan = (await _call(cs, "archive_client", {"client_id": victim, "action": "restore"}))["plan"]
        await _call(
            cs, "archive_client", {"client_id": victim, "action": "restore", "confirm": plan["plan_id"]}
        )
        print("  restored with a second plan → confirm")


def _quarter(day: date) -> tuple[date, date]:
    from revops_sales.demo.last_week import quarter_of

    return quarter_of(day)


async def ask_sales(data_dir: Path, as_of: date) -> None:
    params = StdioServerParameters(
        command=_bin("revops-sales"), args=["--toolsets", "all"], env=_env(data_dir)
    )
    start, end = _quarter(as_of)
    period = {"start": start.isoformat(), "end": end.isoformat()}
    async with Client(params, mode="legacy") as sales:
        _heading("Q: Will we make the quarter?  → get_quota_attainment, forecast_period")
        team = next(
            q for q in (await _call(sales, "get_quota_attainment", period))["result"] if q["owner"] == "*"
        )
        fc = await _call(sales, "forecast_period", {**period, "quota_minor": team["amount_minor"]})
        sim = fc["simulation"]
        print(
            f"  quota {_money(team['amount_minor'])} · won {_money(fc['won_minor'])} "
            f"({team['attainment'] * 100:.0f}% attained) · open {_money(fc['open_minor'])} in "
            f"{fc['open_deals']} deals, weighted {_money(fc['weighted_minor'])}"
        )
        print(
            f"  Monte Carlo ({sim['runs']:,} runs): P10 {_money(sim['p10'])} · P50 {_money(sim['p50'])} · "
            f"P90 {_money(sim['p90'])} · P(total ≥ quota) {fc['p_reach_quota'] * 100:.0f}%"
        )
        if team["coverage"] is not None:
            print(f"  coverage of the remaining quota: {team['coverage']:.2f}×")

        _heading(
            "Q: What moved since last week, and why?  → save_forecast_snapshot, compare_forecast_snapshots"
        )
        await _call(sales, "save_forecast_snapshot", period)
        moved = await _call(sales, "compare_forecast_snapshots", {})
        print(
            f"  won {moved['won_change_minor'] / 100:+,.0f} · "
            f"open {moved['open_change_minor'] / 100:+,.0f} · "
            f"weighted {moved['weighted_change_minor'] / 100:+,.0f} USD since "
            f"{moved['baseline']['taken_at'][:10]}: {moved['counts']}"
        )
        for deal in moved["moved"][:4]:
            print(
                f"    {deal['name']:<20} {deal['total_change_minor'] / 100:+12,.0f} USD  "
                + "; ".join(deal["reasons"])
            )

        _heading("Q: Which deals are stuck?  → find_stalled_deals")
        stalled = await _call(sales, "find_stalled_deals", {"limit": 3})
        print(f"  {len(stalled['alerts'])} shown of {stalled['open_deals']} open deals checked")
        for alert in stalled["alerts"][:3]:
            deal = alert["deal"]
            print(f"  {deal['name']} ({deal['stage']}, {deal['owner']}, {_money(deal['amount_minor'])}):")
            for reason in alert["stalled"] + alert["slipping"]:
                print(f"    {reason}")

        _heading("Q: Which leads should we call first, and why?  → best_leads")
        best = await _call(sales, "best_leads", {"top": 3})
        for lead in best["items"]:
            print(
                f"  {lead['rank']}. {lead['name']} ({lead['title'] or '—'}, {lead['company_name']}): "
                f"fit {lead['fit_score']}, intent {lead['intent_score']}"
            )
            print(f"     {'; '.join(lead['why'][:4])}")


def main() -> int:
    data_dir = Path(os.environ.get("REVOPS_DEMO_DIR", "var/demo")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    as_of = datetime.now(UTC).date()
    _heading(f"Building a {CLIENTS}-client demo portfolio (seed {SEED}) in {data_dir}/revops.db")
    build_portfolio(data_dir, as_of)
    _heading("Starting each server over stdio (as Claude Desktop does)")
    anyio.run(tour_servers, data_dir)
    anyio.run(ask_cs, data_dir, as_of)
    anyio.run(ask_sales, data_dir, as_of)
    _heading("revops audit verify")
    verify = subprocess.run(  # noqa: S603 - our own console script
        [_bin("revops"), "audit", "verify"], env=_env(data_dir), capture_output=True, text=True, check=False
    )
    print("  " + (verify.stdout.strip() or verify.stderr.strip()).replace("\n", "\n  "))
    return verify.returncode


if __name__ == "__main__":
    sys.exit(main())
