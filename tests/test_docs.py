"""The published docs match the code they describe."""

from __future__ import annotations

from pathlib import Path

from revops_suite.docgen import generate, generate_configuration

ROOT = Path(__file__).resolve().parents[1]


def test_tool_reference_is_current():
    current = (ROOT / "docs" / "tools.md").read_text()
    assert current == generate(), "docs/tools.md is stale: run `uv run python -m revops_suite.docgen`"


def test_configuration_reference_is_current():
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert current == generate_configuration(), (
        "docs/configuration.md is stale: run `python -m revops_suite.docgen`"
    )


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme
    assert "make test" in readme
