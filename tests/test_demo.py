"""`make demo` runs end to end: the walkthrough calls real tools on a small generated portfolio.

The README's first command must work on a fresh clone; the demo broke once when its tools left the
default toolsets, and nothing noticed. This runs the same module on 40 clients.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_demo_walkthrough_runs_and_the_audit_chain_verifies(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOPS_") and k != "DATABASE_URL"}
    env |= {
        "REVOPS_DEMO_DIR": str(tmp_path / "demo"),
        "REVOPS_DEMO_CLIENTS": "40",
        "REVOPS_DEMO_DEALS": "600",
    }
    done = subprocess.run(
        [sys.executable, "-m", "revops_suite.demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for question in (
        "generate_health_report",
        "track_renewals",
        "archive_client",
        "forecast_period",
        "compare_forecast_snapshots",
        "find_stalled_deals",
        "best_leads",
        "revops audit verify",
    ):
        assert question in done.stdout
    assert "Monte Carlo (10,000 runs): P10" in done.stdout
    assert "P(total ≥ quota)" in done.stdout
    assert "confirmed (done) → archived: True" in done.stdout
    assert "OK:" in done.stdout  # the audit chain verified
