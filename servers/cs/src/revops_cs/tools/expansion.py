"""CS toolset `expansion`: Upsell and cross-sell signals, renewals, NRR/GRR and lifetime value."""

from __future__ import annotations

from revops_core.server import Toolset

toolset = Toolset("expansion", "Upsell and cross-sell signals, renewals, NRR/GRR and lifetime value.")
