"""CS tables for usage (filled in by its own change)."""
