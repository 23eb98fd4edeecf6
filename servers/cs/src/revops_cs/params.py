"""CS parameter types: the core vocabulary (`revops_core.params`) applied to CS entities."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from revops_core.params import MAX_PAGE, Id, SingleLine, WholeNumber

ClientId = Annotated[int, Id("client", see="list_clients")]
OptClient = Annotated[int | None, Id("client", optional="omit for all")]
TicketId = Annotated[int, Id("ticket", see="list_tickets")]
Tags = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=50), SingleLine]] | None,
    Field(max_length=20, description="Tags (replace existing ones)."),
]
Top = Annotated[int, Field(ge=1, le=MAX_PAGE, description="Most rows to return."), WholeNumber]
"""The size of a ranked, computed answer (a top-N, not a page: nothing to page through)."""
