"""The command line every server shares: `revops-<name> [--toolsets a,b] [--read-only] [--http]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from revops_core.errors import RevOpsError
from revops_core.logs import configure_logging, get_logger
from revops_core.settings import Settings

if TYPE_CHECKING:
    from revops_core.server import RevOpsServer


class ServerFactory(Protocol):
    """A server package's `create_server`."""

    def __call__(self, settings: Settings, *, defer: bool = False) -> RevOpsServer: ...


def describe_settings_error(err: ValidationError) -> str:
    """One line per bad setting, naming its environment variable and the rule it broke."""
    lines = []
    for problem in err.errors(include_input=False, include_url=False):
        name = ".".join(str(p) for p in problem["loc"])
        lines.append(f"  REVOPS_{name.upper()} ({name}): {problem['msg']}")
    return "\n".join(lines) + "\nFix the variable or the config file, or run `revops doctor`."


def parse_args(name: str, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"revops-{name}", description=f"RevOps Suite {name} MCP server")
    parser.add_argument("--toolsets", help="Comma-separated toolsets to expose (default: all).")
    parser.add_argument("--read-only", action="store_true", help="List only read tools.")
    parser.add_argument(
        "--transport", choices=["stdio", "http"], default="stdio", help="stdio (default) or streamable HTTP."
    )
    parser.add_argument("--host", help="HTTP bind address (default from settings: 127.0.0.1).")
    parser.add_argument("--port", type=int, help="HTTP port (default from settings: 8000).")
    return parser.parse_args(argv)


def run(name: str, factory: ServerFactory, argv: Sequence[str] | None = None) -> int:
    """Parse flags, validate settings, build the server and serve. Errors exit non-zero with a hint."""
    args = parse_args(name, argv)
    overrides: dict[str, Any] = {}  # mixed values; Settings validates them
    if args.toolsets:
        overrides["toolsets"] = args.toolsets
    if args.read_only:
        overrides["read_only"] = True
    if args.host:
        overrides["http_host"] = args.host
    if args.port:
        overrides["http_port"] = args.port
    try:
        settings = Settings(**overrides)
        configure_logging(settings.log_level)
        from revops_core.audit_auto import automatic_checkpoints

        # HTTP: a service must fail fast on a bad schema or toolset, before its health check passes.
        # stdio: answer the client's handshake at once, load tools in the background.
        server = factory(settings) if args.transport == "http" else factory(settings, defer=True)
        # Audit checkpoints every N entries / T seconds while serving, and one at shutdown.
        with automatic_checkpoints(server.runtime):
            if args.transport == "http":
                from revops_core.http_transport import serve_http

                serve_http(server, settings)
            else:
                from revops_core.server import run_stdio

                run_stdio(server)
    except RevOpsError as err:
        get_logger("revops.start").error("start_failed", code=err.code, message=err.message, hint=err.hint)
        print(f"revops-{name}: {err.client_text()}", file=sys.stderr)
        return 2
    except ValidationError as err:
        print(f"revops-{name}: invalid configuration:\n{describe_settings_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
