"""Demo support data: agents, routing rules, KB articles, and half a year of tickets with comments.

Deterministic: everything derives from the `random.Random` passed in. Response and resolution times
are drawn log-normally around each priority's SLA target (most tickets meet it, a realistic tail
breaches), so `analyze_support_performance` shows believable — not perfect — compliance.
Tickets whose drawn resolution lies after `as_of` stay open; replies after `as_of` are not written.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, date, datetime, time, timedelta
from typing import TypedDict

from sqlmodel import Session

from revops_cs.analytics.sla import DEFAULT_TARGETS_MINUTES
from revops_cs.models.clients import CsClient
from revops_cs.models.escalations import CsEscalation
from revops_cs.models.support import CsKbArticle, CsRoutingRule, CsSupportAgent, CsTicket, CsTicketComment


class _RuleMatch(TypedDict, total=False):
    """The `CsRoutingRule` match columns a demo rule sets."""

    match_priority: str
    match_tier: str
    match_tag: str


AGENTS = (("ana", "tier1"), ("ben", "tier1"), ("chloe", "tier1"), ("dev", "tier2"), ("elif", "vip"))
# (name, position, match columns, team)
RULES: tuple[tuple[str, int, _RuleMatch, str], ...] = (
    ("urgent to tier 2", 10, {"match_priority": "urgent"}, "tier2"),
    ("enterprise desk", 20, {"match_tier": "enterprise"}, "vip"),
    ("everything else", 100, {}, "tier1"),
)
PRIORITY_WEIGHTS = {"urgent": 5, "high": 20, "normal": 55, "low": 20}
TICKETS_PER_QUARTER = {"smb": (1, 4), "mid_market": (3, 7), "enterprise": (5, 10)}
# (subject, first customer message, tag)
ISSUES = (
    ("CSV export times out", "Exporting last month's data to CSV spins and then times out.", "export"),
    ("SSO login fails", "Since this morning our users get an error when signing in with SSO.", "sso"),
    (
        "Dashboard numbers look wrong",
        "The revenue dashboard shows different totals than the report.",
        "reports",
    ),
    ("How do I add a user?", "We hired two people; how do we add seats for them?", "how-to"),
    ("Invoice question", "Our last invoice charged for more seats than we use.", "billing"),
    ("API rate limit errors", "Our integration gets HTTP 429 from your API since yesterday.", "api"),
    ("Slack alerts stopped", "We no longer receive alerts in Slack.", "integrations"),
    ("Feature question: scheduled reports", "Can reports be emailed automatically every Monday?", "how-to"),
)
REPLIES = (
    "Thanks for reaching out — we are looking into it now.",
    "Thanks for the details. Could you send a screenshot of the error?",
    "We have reproduced the issue and are working on a fix.",
)
RESOLUTIONS = (
    "This is fixed now; please let us know if you still see it.",
    "Here is the article that walks through it step by step. Closing for now.",
    "We deployed a fix this morning. Thanks for your patience!",
)
KB_ARTICLES = (
    (
        "Reset your password",
        "Open Settings → Security and choose Reset password. A link arrives by email.",
        ["account"],
    ),
    (
        "Set up single sign-on (SSO)",
        "Admins can connect Okta, Azure AD or Google under Settings → SSO.",
        ["sso", "security"],
    ),
    (
        "Export data to CSV",
        "Use Export on any report. Large exports run in the background and are emailed.",
        ["export"],
    ),
    (
        "Add and remove users",
        "Admins manage seats under Settings → Users; billing follows the seat count.",
        ["how-to", "billing"],
    ),
    ("API rate limits", "The API allows 600 requests per minute; HTTP 429 includes Retry-After.", ["api"]),
    (
        "Connect Slack",
        "Install the Slack app from Integrations and pick the channels for alerts.",
        ["integrations"],
    ),
    (
        "Schedule a report",
        "Open a report, choose Schedule, and pick recipients and a weekly time.",
        ["reports", "how-to"],
    ),
    (
        "Understand your invoice",
        "Invoices list seats, add-ons and proration for mid-cycle changes.",
        ["billing"],
    ),
)


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _business_time(rng: random.Random, day: date) -> datetime:
    return datetime.combine(day, time(8 + rng.randrange(10), rng.randrange(60)), tzinfo=UTC)


def _draw_minutes(rng: random.Random, target: int, spread: float) -> float:
    # Log-normal around ~55 % of target: most tickets meet it, a tail of roughly 15–25 % breaches.
    return max(1.0, target * math.exp(rng.gauss(math.log(0.55), spread)))


def generate_support(
    session: Session, rng: random.Random, clients: list[CsClient], as_of: date
) -> dict[str, int]:
    """Insert agents, rules, KB articles, ~6 months of tickets with comments, CSAT, escalations. No commit."""
    for name, team in AGENTS:
        session.add(CsSupportAgent(name=name, team=team))
    for name, position, match, team in RULES:
        session.add(CsRoutingRule(name=name, position=position, team=team, **match))
    for title, body, tags in KB_ARTICLES:
        session.add(CsKbArticle(title=title, body=body, tags=json.dumps(tags), author="demo"))
    cutoff = datetime.combine(as_of, time.max, tzinfo=UTC)
    team_of = {"urgent": "tier2"}
    counts = {"tickets": 0, "comments": 0, "escalations": 0, "articles": len(KB_ARTICLES)}
    for client in clients:
        low, high = TICKETS_PER_QUARTER.get(client.tier, (1, 4))
        first_day = max(as_of - timedelta(days=180), client.contract_start or as_of - timedelta(days=180))
        last_day = client.churned_at.date() if client.churned_at else as_of
        span = (last_day - first_day).days
        if span <= 0:
            continue
        for _ in range(rng.randint(low, high) * 2):
            subject, message, tag = rng.choice(ISSUES)
            priority = _pick(rng, PRIORITY_WEIGHTS)
            created = _business_time(rng, first_day + timedelta(days=rng.randrange(span)))
            if created > cutoff:
                continue
            fr_target, res_target = DEFAULT_TARGETS_MINUTES[priority]
            reply = created + timedelta(minutes=_draw_minutes(rng, fr_target, 0.9))
            solved = created + timedelta(
                minutes=max(_draw_minutes(rng, res_target, 0.8), 1 + (reply - created).total_seconds() / 60)
            )
            team = team_of.get(priority, "vip" if client.tier == "enterprise" else "tier1")
            agents = [a for a, t in AGENTS if t == team]
            is_solved = solved <= cutoff
            ticket = CsTicket(
                client_id=client.id or 0,
                subject=subject,
                description=message,
                priority=priority,
                status=("closed" if solved < cutoff - timedelta(days=7) else "solved")
                if is_solved
                else rng.choice(("open", "pending")),
                channel=rng.choice(("email", "web", "chat")),
                assignee=rng.choice(agents),
                team=team,
                tags=json.dumps([tag]),
                created_at=created,
                updated_at=min(solved, cutoff),
                first_response_at=reply if reply <= cutoff else None,
                solved_at=solved if is_solved else None,
            )
            if is_solved and rng.random() < 0.4:
                breached = (solved - created) > timedelta(minutes=res_target)
                ticket.csat = rng.choices(
                    (5, 4, 3, 2, 1), weights=(2, 3, 3, 3, 2) if breached else (6, 4, 1, 1, 0)
                )[0]
            session.add(ticket)
            session.flush()
            counts["tickets"] += 1
            comments = []
            if reply <= cutoff:
                comments.append((ticket.assignee, True, True, rng.choice(REPLIES), reply))
                follow = reply + (solved - reply) / 2
                if follow <= cutoff and rng.random() < 0.5:
                    comments.append(("customer", False, True, "Thanks, here is more detail.", follow))
            if is_solved:
                comments.append((ticket.assignee, True, True, rng.choice(RESOLUTIONS), solved))
            for author, agent, public, body, at in comments:
                session.add(
                    CsTicketComment(
                        ticket_id=ticket.id or 0,
                        author=author or "agent",
                        is_agent=agent,
                        public=public,
                        body=body,
                        created_at=at,
                    )
                )
            counts["comments"] += len(comments)
            if priority == "urgent" and rng.random() < 0.5:
                session.add(
                    CsEscalation(
                        client_id=ticket.client_id,
                        ticket_id=ticket.id,
                        severity="urgent",
                        title=subject,
                        owner=client.owner,
                        status="resolved" if is_solved else "open",
                        opened_at=reply,
                        due_at=reply + timedelta(minutes=res_target),
                        resolved_at=solved if is_solved else None,
                        resolution="Fixed with the ticket." if is_solved else None,
                    )
                )
                ticket.escalated = True
                counts["escalations"] += 1
    session.flush()
    return counts
