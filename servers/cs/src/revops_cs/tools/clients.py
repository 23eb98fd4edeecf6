"""CS toolset `clients`: Register, find, update, import and archive client accounts."""

from __future__ import annotations

from revops_core.server import Toolset

toolset = Toolset("clients", "Register, find, update, import and archive client accounts.")
