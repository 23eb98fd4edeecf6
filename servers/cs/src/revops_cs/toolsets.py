"""The CS toolsets: names, descriptions and which are listed by default.

Declared here, apart from the tool modules, so a tool module only imports the toolset it adds to
(never another tool module), and `--toolsets` names are in one place. Every module under
`revops_cs.tools` is loaded by `server.toolsets()`; each registers its tools on one of these.
"""

from __future__ import annotations

from revops_core.server import Toolset

clients = Toolset("clients", "Register, find, update, import and archive client accounts.")
health = Toolset("health", "Usage, engagement, health scores, segments, adoption and lifecycle.")
onboarding = Toolset("onboarding", "Onboarding plans, milestones, training, certification and time to value.")
retention = Toolset(
    "retention", "Churn risk, churn model, retention campaigns, escalations and post-mortems."
)
communication = Toolset("communication", "Emails, automated communications, newsletters and Intercom.")
reviews = Toolset("reviews", "Business reviews (QBRs) and the customer advocacy programme.")
support = Toolset("support", "Support tickets, routing, knowledge base and support performance.")
expansion = Toolset(
    "expansion", "Upsell and cross-sell signals, renewals, revenue retention and lifetime value."
)
feedback = Toolset(
    "feedback", "Surveys (NPS, CSAT, CES), sentiment, voice of the customer and product insights."
)

ALL = (clients, health, onboarding, retention, communication, reviews, support, expansion, feedback)
