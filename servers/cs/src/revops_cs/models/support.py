"""Support tickets and their comments (local store; mirrored to Zendesk when configured)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Column, Connection, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

Priority = Literal["urgent", "high", "normal", "low"]
PRIORITIES: tuple[str, ...] = get_args(Priority)
TicketStatus = Literal["new", "open", "pending", "hold", "solved", "closed"]
TICKET_STATUSES: tuple[str, ...] = get_args(TicketStatus)
OPEN_STATUSES: tuple[str, ...] = ("new", "open", "pending", "hold")


class CsTicket(SQLModel, table=True):
    __tablename__ = "cs_ticket"
    __table_args__ = (
        Index("ix_cs_ticket_client_created", "client_id", "created_at"),
        UniqueConstraint("external_source", "external_id", name="uq_cs_ticket_external"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id")
    contact_id: int | None = Field(default=None, foreign_key="core_contact.id")
    subject: str = Field(max_length=300)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    priority: str = Field(default="normal", max_length=10, index=True)
    status: str = Field(default="new", max_length=10, index=True)
    channel: str = Field(default="api", max_length=20)
    assignee: str | None = Field(default=None, max_length=200, index=True)
    team: str | None = Field(default=None, max_length=100, description="Team set by routing.")
    escalated: bool = False
    csat: int | None = Field(default=None, ge=1, le=5)
    tags: str = Field(default="[]", max_length=2000, description="JSON list of tags.")
    created_at: datetime = utc_field(default_now=True)
    updated_at: datetime = utc_field(default_now=True)
    first_response_at: datetime | None = utc_field(nullable=True)
    solved_at: datetime | None = utc_field(nullable=True)
    external_source: str | None = Field(default=None, max_length=20)
    external_id: str | None = Field(default=None, max_length=100)

    @property
    def zendesk_id(self) -> str | None:
        """The Zendesk ticket id, when the ticket is mirrored there."""
        return self.external_id if self.external_source == "zendesk" else None


class CsTicketComment(SQLModel, table=True):
    __tablename__ = "cs_ticket_comment"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="cs_ticket.id", index=True)
    author: str = Field(max_length=200)
    is_agent: bool = False
    public: bool = True
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = utc_field(default_now=True)
    external_id: str | None = Field(default=None, max_length=100)


class CsSupportAgent(SQLModel, table=True):
    """A support agent routing may assign tickets to; load = the agent's open tickets."""

    __tablename__ = "cs_support_agent"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, description="Matches CsTicket.assignee.")
    team: str = Field(max_length=100, index=True)
    active: bool = True
    created_at: datetime = utc_field(default_now=True)


class CsRoutingRule(SQLModel, table=True):
    """First matching active rule (lowest position) sends a ticket to a team, or straight to an agent.

    Empty match fields match anything, so a rule with none is a catch-all.
    """

    __tablename__ = "cs_routing_rule"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    position: int = Field(default=100, index=True)
    match_priority: str | None = Field(default=None, max_length=10)
    match_tier: str | None = Field(default=None, max_length=20)
    match_tag: str | None = Field(default=None, max_length=100)
    team: str = Field(max_length=100)
    agent: str | None = Field(default=None, max_length=200, description="Fixed agent; else least loaded.")
    active: bool = True
    created_at: datetime = utc_field(default_now=True)

    @property
    def match(self) -> dict[str, str]:
        """The rule's conditions (priority, tier, tag) that are set."""
        conditions = {"priority": self.match_priority, "tier": self.match_tier, "tag": self.match_tag}
        return {name: value for name, value in conditions.items() if value}


class CsSlaTarget(SQLModel, table=True):
    """Per-priority SLA targets (config); priorities without a row use REFERENCE defaults."""

    __tablename__ = "cs_sla_target"

    priority: str = Field(primary_key=True, max_length=10)
    first_response_minutes: int = Field(ge=1)
    resolution_minutes: int = Field(ge=1)


class CsKbArticle(SQLModel, table=True):
    """A knowledge-base article, searchable by full text (FTS5 on SQLite, tsvector on PostgreSQL)."""

    __tablename__ = "cs_kb_article"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    tags: str = Field(default="[]", max_length=2000, description="JSON list of tags.")
    status: str = Field(default="published", max_length=12, index=True)
    author: str = Field(max_length=200)
    created_at: datetime = utc_field(default_now=True)
    updated_at: datetime = utc_field(default_now=True)


class CsSyncCursor(SQLModel, table=True):
    """Where an incremental vendor export stopped, so the next sync resumes there."""

    __tablename__ = "cs_sync_cursor"
    __table_args__ = (UniqueConstraint("vendor", "stream", name="uq_cs_sync_cursor"),)

    id: int | None = Field(default=None, primary_key=True)
    vendor: str = Field(max_length=30)
    stream: str = Field(max_length=50)
    cursor: str = Field(max_length=500)
    synced_at: datetime = utc_field(default_now=True)


# Full-text search over articles. SQLite: an external-content FTS5 table kept in step by triggers
# (porter stemming, like PostgreSQL's english config). PostgreSQL: a stored generated tsvector
# (title weighted A, body B) with a GIN index. Both are invisible to the ORM model on purpose.
_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS cs_kb_article_fts USING fts5("
    "title, body, tags, content='cs_kb_article', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS cs_kb_article_ai AFTER INSERT ON cs_kb_article BEGIN "
    "INSERT INTO cs_kb_article_fts(rowid, title, body, tags) VALUES (new.id, new.title, new.body, new.tags);"
    " END",
    "CREATE TRIGGER IF NOT EXISTS cs_kb_article_ad AFTER DELETE ON cs_kb_article BEGIN "
    "INSERT INTO cs_kb_article_fts(cs_kb_article_fts, rowid, title, body, tags) "
    "VALUES ('delete', old.id, old.title, old.body, old.tags); END",
    "CREATE TRIGGER IF NOT EXISTS cs_kb_article_au AFTER UPDATE ON cs_kb_article BEGIN "
    "INSERT INTO cs_kb_article_fts(cs_kb_article_fts, rowid, title, body, tags) "
    "VALUES ('delete', old.id, old.title, old.body, old.tags); "
    "INSERT INTO cs_kb_article_fts(rowid, title, body, tags) VALUES (new.id, new.title, new.body, new.tags);"
    " END",
)
_POSTGRES_FTS = (
    "ALTER TABLE cs_kb_article ADD COLUMN IF NOT EXISTS search tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(tags, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(body, '')), 'C')) STORED",
    "CREATE INDEX IF NOT EXISTS ix_cs_kb_article_search ON cs_kb_article USING GIN (search)",
)


def after_create(connection: Connection) -> None:
    """Create the knowledge-base search structures SQLModel cannot express."""
    statements = _SQLITE_FTS if connection.dialect.name == "sqlite" else _POSTGRES_FTS
    for statement in statements:
        connection.execute(text(statement))
