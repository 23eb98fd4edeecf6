"""The official MCP conformance scenarios pass on all three servers over streamable HTTP (auth on).

The full run needs npx (the official CLI); the harness's own rules (which runs are planned, how a
result is judged, the expected-failures baseline, the server's log never blocking it) are checked
without it, deterministically.
"""

from __future__ import annotations

import httpx
import pytest

from revops_core.conformance import (
    EXPECTED_FAILURES,
    REQUIREMENT_SETS,
    SCENARIOS,
    SERVERS,
    STATEFUL,
    STATELESS,
    _server_env,
    judge,
    npx_command,
    planned_runs,
    run_all,
    running_server,
    write_baseline,
)
from revops_core.testing import services_required

PIPE_BUFFER = 2**16  # Linux's default pipe capacity: an unread stderr pipe blocks the writer past it


def test_every_scenario_runs_under_each_of_its_requirement_sets():
    runs = planned_runs()
    assert sorted({scenario for _, scenario in runs}) == sorted(SCENARIOS)
    assert ("2025-11-25", "server-session-lifecycle") in runs
    for scenario in ("server-stateless", "sep-2164-resource-not-found", "caching", "http-header-validation"):
        assert (STATELESS, scenario) in runs
        assert (STATEFUL, scenario) not in runs  # introduced with 2026-07-28
    assert (STATEFUL, "tools-list") in runs
    assert (STATELESS, "tools-list") in runs
    assert set(REQUIREMENT_SETS) == {STATEFUL, STATELESS}
    with pytest.raises(ValueError, match="no-such-scenario"):
        planned_runs(["no-such-scenario"])


def test_every_expected_failure_names_a_planned_scenario_and_a_reason():
    for entry, reason in EXPECTED_FAILURES.items():
        scenario, _, check = entry.partition(":")
        assert scenario in SCENARIOS, entry
        assert check, entry
        assert "fixture" in reason, entry  # only checks that need the reference fixture are excused


def test_baseline_file_lists_each_expected_failure(tmp_path):
    text = write_baseline(tmp_path / "baseline.yml").read_text()
    assert text.splitlines() == ["server:", *(f"  - {entry}" for entry in EXPECTED_FAILURES)]


def _check(check_id: str, status: str) -> dict[str, str]:
    return {"id": check_id, "status": status, "errorMessage": f"{check_id} said {status}"}


def test_judge_excuses_only_listed_checks_and_flags_stale_ones():
    scenario, listed = next(iter(EXPECTED_FAILURES)).split(":")
    ok = judge(scenario, STATELESS, [_check("a", "SUCCESS"), _check(listed, "FAILURE")], 0, "")
    assert ok.passed
    assert ok.checks == {"SUCCESS": 1, "FAILURE": 1}
    assert len(ok.expected) == 1
    warned = judge(scenario, STATELESS, [_check("a", "WARNING")], 1, "")
    assert not warned.passed
    assert warned.failures == ["a (WARNING): a said WARNING"]
    stale = judge(scenario, STATELESS, [_check(listed, "SUCCESS")], 1, "")
    assert not stale.passed
    assert "stale" in stale.failures[0]


def test_judge_fails_a_run_without_checks_or_with_a_failed_cli():
    skipped = judge("ping", STATELESS, [], 0, "SKIPPED: scenario 'ping' is not applicable at spec version")
    assert skipped.failures == [f"not applicable at {STATELESS}; correct SCENARIOS"]
    assert judge("ping", STATEFUL, [], 0, "").failures == ["no check results were written"]
    crashed = judge("ping", STATEFUL, [_check("ping", "SUCCESS")], 2, "boom")
    assert not crashed.passed
    assert crashed.failures == ["conformance CLI exited 2: boom"]


@pytest.mark.slow
def test_server_log_is_drained_so_many_requests_never_block_the_server(tmp_path):
    # The harness once piped stderr and never read it: past the pipe's capacity the server blocked.
    (tmp_path / "data").mkdir()
    env = _server_env(tmp_path / "data", {"REVOPS_LOG_LEVEL": "DEBUG"})
    log_path = tmp_path / "server.log"
    with running_server("sales", env, log_path=log_path) as base_url, httpx.Client(timeout=10) as client:
        statuses = set()
        for _ in range(5000):  # each refused request logs a few hundred bytes
            if log_path.stat().st_size > 2 * PIPE_BUFFER:
                break
            response = client.post(f"{base_url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            statuses.add(response.status_code)  # unauthenticated: refused, and logged
        assert client.get(f"{base_url}/healthz").status_code == 200
    assert log_path.stat().st_size > 2 * PIPE_BUFFER
    assert statuses == {401}


@pytest.mark.slow
def test_every_listed_scenario_passes_on_every_server():
    if npx_command() is None:
        if services_required():
            pytest.fail("npx is required for the conformance suite (REVOPS_REQUIRE_SERVICES=1)")
        pytest.skip("npx is not installed: the official conformance CLI cannot run")
    results = run_all(SERVERS)
    failed = {
        f"{server}@{rs}/{scenario}": result.failures
        for server, by_set in results.items()
        for rs, by_scenario in by_set.items()
        for scenario, result in by_scenario.items()
        if not result.passed
    }
    assert failed == {}
    planned = sorted(planned_runs())
    for server in SERVERS:
        assert sorted((rs, sc) for rs, by in results[server].items() for sc in by) == planned
    # Every run produced at least one SUCCESS check (an empty result file is not a pass).
    runs = [r for by_set in results.values() for by in by_set.values() for r in by.values()]
    assert all(r.checks.get("SUCCESS", 0) >= 1 for r in runs)
