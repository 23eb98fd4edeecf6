"""The official MCP conformance scenarios pass on all three servers over streamable HTTP (auth on)."""

from __future__ import annotations

import pytest

from revops_core.conformance import SCENARIOS, SERVERS, npx_command, run_all
from revops_core.testing import services_required

pytestmark = pytest.mark.slow


def test_every_listed_scenario_passes_on_every_server():
    if npx_command() is None:
        if services_required():
            pytest.fail("npx is required for the conformance suite (REVOPS_REQUIRE_SERVICES=1)")
        pytest.skip("npx is not installed: the official conformance CLI cannot run")
    results = run_all(SERVERS, SCENARIOS)
    failed = {
        f"{server}/{scenario}": result.failures
        for server, by_scenario in results.items()
        for scenario, result in by_scenario.items()
        if not result.passed
    }
    assert failed == {}
    assert {server: sorted(by) for server, by in results.items()} == {s: sorted(SCENARIOS) for s in SERVERS}
    # Every scenario produced at least one SUCCESS check (an empty result file is not a pass).
    assert all(r.checks.get("SUCCESS", 0) >= 1 for by in results.values() for r in by.values())
