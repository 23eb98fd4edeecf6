"""CS toolset `support`: the knowledge base — search and read articles (readers), write them (members)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import Count, Id, Text, require
from revops_core.server import Call
from revops_cs.params import Tags
from revops_cs.services import knowledge_base as kb
from revops_cs.services.knowledge_base import ArticleOut, ArticleSummary, KbSearch
from revops_cs.toolsets import support as toolset

ArticleStatus = Literal["draft", "published", "archived"]


@toolset.tool(tier="read", title="Search the knowledge base", replaces="manage_knowledge_base action=search")
def search_knowledge_base(
    call: Call,
    query: Annotated[str, Text("Search words.", max_length=500)],
    include_drafts: Annotated[bool, Field(description="Search drafts/archived too.")] = False,
    limit: Annotated[int, Count("Max results.", ge=1, le=50)] = 10,
) -> KbSearch:
    """Full-text search of knowledge-base articles, ranked, with snippets."""
    return kb.search(call.db, query, include_drafts=include_drafts, limit=limit)


@toolset.tool(tier="read", title="Get a KB article", replaces="manage_knowledge_base action=get")
def get_kb_article(
    call: Call, article_id: Annotated[int, Id("article", see="search_knowledge_base")]
) -> ArticleOut:
    """One knowledge-base article with its full text."""
    return ArticleOut.model_validate(kb.get(call.db, article_id))


@toolset.tool(
    tier="write",
    idempotent=False,
    title="Write a KB article",
    target="cs_kb_article:{article_id}",
)
def manage_knowledge_base(
    call: Call,
    action: Annotated[Literal["create", "update"], Field(description="What to do.")],
    article_id: Annotated[
        int | None, Id("article", see="search_knowledge_base", optional="needed for update")
    ] = None,
    title: Annotated[str | None, Text("Title.", max_length=300)] = None,
    body: Annotated[str | None, Text("Body text.", max_length=100_000)] = None,
    tags: Tags = None,
    status: Annotated[ArticleStatus | None, Field(description="Default published.")] = None,
) -> ArticleSummary:
    """Create (title, body) or update a knowledge-base article."""
    if action == "update":
        article = kb.update(
            call.db,
            require(article_id, "article_id", when="action=update"),
            title=title,
            body=body,
            tags=tags,
            status=status,
        )
    else:
        article = kb.create(
            call.db,
            title=require(title, "title", when="action=create"),
            body=require(body, "body", when="action=create"),
            tags=tags,
            status=status,
            author=call.actor,
        )
        call.target = f"cs_kb_article:{article.id}"
    return ArticleSummary.model_validate(article)
