"""Knowledge-base articles: ranked full-text search, read, create and update.

Search runs in the database: FTS5 bm25 on SQLite, ts_rank on PostgreSQL (see models/support.py for
the index each keeps in step with the table); user text is reduced to plain words, never FTS syntax.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field
from sqlalchemy import text
from sqlmodel import Session

from revops_core.errors import NotFound, ValidationFailed
from revops_cs.models.support import CsKbArticle
from revops_cs.output import FromJson, Out

_TOKEN = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 20


class ArticleHit(Out):
    id: int = Field(description="Article id.")
    title: str = Field(description="Title.")
    status: str = Field(description="draft|published|archived.")
    rank: float = Field(description="Relevance, higher is better.")
    snippet: str = Field(description="Excerpt; [term] marks hits.")


class KbSearch(Out):
    results: list[ArticleHit] = Field(description="Best first.")


class ArticleSummary(Out):
    id: int = Field(description="Article id.")
    title: str = Field(description="Title.")
    status: str = Field(description="draft|published|archived.")
    tags: Annotated[list[str], FromJson] = Field(description="Tags.")
    updated_at: datetime = Field(description="Last change (UTC).")


class ArticleOut(ArticleSummary):
    body: str = Field(description="Full text.")
    author: str = Field(description="Who created it.")
    created_at: datetime = Field(description="Created (UTC).")


def search(session: Session, query: str, *, include_drafts: bool, limit: int) -> KbSearch:
    """Ranked full-text search; an article matching any of the words is a hit."""
    tokens = [t for t in _TOKEN.findall(query.lower()) if len(t) >= 2][:MAX_TERMS]
    if not tokens:
        raise ValidationFailed("The query has no searchable words.", field="query", hint="Use plain words.")
    status_sql = "" if include_drafts else " AND a.status = 'published'"
    if session.get_bind().dialect.name == "sqlite":
        match = " OR ".join(f'"{t}"' for t in tokens)  # quoted: user text is never FTS syntax
        sql = (
            "SELECT a.id, a.title, a.status, -bm25(cs_kb_article_fts, 5.0, 1.0, 2.0) AS rank, "
            "snippet(cs_kb_article_fts, 1, '[', ']', '…', 16) AS snip "
            "FROM cs_kb_article_fts JOIN cs_kb_article a ON a.id = cs_kb_article_fts.rowid "
            f"WHERE cs_kb_article_fts MATCH :q{status_sql} ORDER BY rank DESC, a.id LIMIT :n"
        )
    else:
        match = " or ".join(tokens)
        sql = (
            "SELECT a.id, a.title, a.status, ts_rank(a.search, q) AS rank, "
            "ts_headline('english', a.body, q, 'StartSel=[, StopSel=], MaxWords=20, MinWords=6') AS snip "
            "FROM cs_kb_article a, websearch_to_tsquery('english', :q) q "
            f"WHERE a.search @@ q{status_sql} ORDER BY rank DESC, a.id LIMIT :n"
        )
    rows = session.connection().execute(text(sql), {"q": match, "n": limit}).all()
    return KbSearch(
        results=[
            ArticleHit(id=r[0], title=r[1], status=r[2], rank=round(float(r[3]), 6), snippet=r[4])
            for r in rows
        ]
    )


def get(session: Session, article_id: int) -> CsKbArticle:
    article = session.get(CsKbArticle, article_id)
    if article is None:
        raise NotFound(
            f"No article with id {article_id}.",
            field="article_id",
            hint="Find ids with search_knowledge_base.",
        )
    return article


def create(
    session: Session, *, title: str, body: str, tags: list[str] | None, status: str | None, author: str
) -> CsKbArticle:
    article = CsKbArticle(
        title=title, body=body, tags=json.dumps(tags or []), status=status or "published", author=author
    )
    session.add(article)
    session.flush()
    return article


def update(
    session: Session,
    article_id: int,
    *,
    title: str | None,
    body: str | None,
    tags: list[str] | None,
    status: str | None,
) -> CsKbArticle:
    article = get(session, article_id)
    if all(v is None for v in (title, body, tags, status)):
        raise ValidationFailed("Nothing to update.", field="body", hint="Pass title, body, tags or status.")
    article.title = title or article.title
    article.body = body or article.body
    article.tags = json.dumps(tags) if tags is not None else article.tags
    article.status = status or article.status
    article.updated_at = datetime.now(UTC)
    session.add(article)
    session.flush()
    return article
