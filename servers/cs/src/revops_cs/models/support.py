"""CS tables for support (filled in by its own change)."""
