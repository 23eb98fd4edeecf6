"""The CS toolsets: names, descriptions and which are listed by default.

Declared here, apart from the tool modules, so a tool module only imports the toolset it adds to
(never another tool module), and `--toolsets` names are in one place. Every module under
`revops_cs.tools` is loaded by `server.toolsets()`; each registers its tools on one of these.
"""

from __future__ import annotations

from revops_core.server import Toolset

clients = Toolset("clients", "Register, find, update, import and archive client accounts.")
health = Toolset("health", "Usage in, engagement, health scores, trends and the portfolio health report.")
retention = Toolset(
    "retention", "Churn risk, churn model, retention campaigns, escalations and post-mortems."
)
# Listed only when named (or with --toolsets all): the default list stays within a client's budget.
segments = Toolset("segments", "Value tiers, rule-based segments and lifecycle stages.", default=False)
adoption = Toolset("adoption", "Feature adoption and adoption milestones.", default=False)
onboarding = Toolset(
    "onboarding", "Onboarding plans, milestones, training, certification and time to value.", default=False
)
communication = Toolset(
    "communication", "Emails, automated communications, newsletters and Intercom.", default=False
)
reviews = Toolset("reviews", "Business reviews (QBRs) and the customer advocacy programme.", default=False)
support = Toolset(
    "support", "Support tickets, routing, knowledge base and support performance.", default=False
)
expansion = Toolset(
    "expansion",
    "Upsell and cross-sell signals, renewals, revenue retention and lifetime value.",
    default=False,
)
feedback = Toolset(
    "feedback",
    "Surveys (NPS, CSAT, CES), sentiment, voice of the customer and product insights.",
    default=False,
)

ALL = (
    clients,
    health,
    retention,
    segments,
    adoption,
    onboarding,
    communication,
    reviews,
    support,
    expansion,
    feedback,
)
