"""CS parameter types: the core vocabulary (`revops_core.params`) applied to CS entities."""

from __future__ import annotations

from typing import Annotated

from revops_core.params import Id

ClientId = Annotated[int, Id("client", see="list_clients")]
OptClient = Annotated[int | None, Id("client", see="list_clients", optional="omit for every client")]
