"""The suite's servers by name, for the demo, the benchmark and suite-wide tests."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from revops_core.server import RevOpsServer
from revops_core.settings import Settings

SERVER_NAMES: tuple[str, ...] = ("sales", "marketing", "cs")


def factory(name: str) -> Callable[[Settings], RevOpsServer]:
    """`create_server` of the named server package (imported on demand)."""
    if name not in SERVER_NAMES:
        raise ValueError(f"unknown server {name!r}; choose from {', '.join(SERVER_NAMES)}")
    create: Callable[[Settings], RevOpsServer] = import_module(f"revops_{name}.server").create_server
    return create


def console_script(name: str) -> str:
    return f"revops-{name}"
