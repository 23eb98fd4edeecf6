"""Load the shared verification harness for every test directory."""

pytest_plugins = ["revops_core.testing"]
