"""Registers the Sales resources, prompts and id completion (`revops_sales.resources`) with the
`deals` toolset: they are listed when deals are."""

from __future__ import annotations

from revops_sales.resources import register
from revops_sales.toolsets import deals

deals.register(register)
