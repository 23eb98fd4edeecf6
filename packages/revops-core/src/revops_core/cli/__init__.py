"""The `revops` command line."""
