"""The Sales toolsets: names, descriptions and which are listed by default.

The default list is the weekly pipeline review — `deals` (pipelines, deals, stalls) and
`forecasting` (forecast, quotas, snapshots) — within a client's tools/list budget (30 000
characters); the others are listed when named (`--toolsets crm,deals,...`) or with `--toolsets all`.
"""

from __future__ import annotations

from revops_core.server import Toolset

crm = Toolset(
    "crm",
    "Companies and contacts (shared with the other servers), leads, search, import, duplicates, archive.",
    default=False,
)
deals = Toolset("deals", "Pipelines and stages, deals, stage history, line items, tasks, notes, competitors.")
forecasting = Toolset(
    "forecasting", "Weighted pipeline, Monte Carlo forecast, quotas, coverage and forecast snapshots."
)
analytics = Toolset(
    "analytics",
    "Win rates, cycle length, velocity, conversion, waterfall, leaderboard, activity.",
    default=False,
)
prospecting = Toolset(
    "prospecting",
    "Ideal customer profile, lead scoring, qualification scorecards, routing, lead conversion, Apollo.",
    default=False,
)
meetings = Toolset(
    "meetings", "Meetings with Google Calendar, outcomes, prep briefs and statistics.", default=False
)
email = Toolset("email", "Gmail send and reply, drafts, logged messages and simple sequences.", default=False)
configuration = Toolset(
    "configuration",
    "Stage probabilities, forecast categories, frameworks, sync settings, credentials.",
    default=False,
)
sync = Toolset("sync", "CRM sync with HubSpot and Salesforce and its status per vendor.", default=False)

ALL = (crm, deals, forecasting, analytics, prospecting, meetings, email, configuration, sync)
