"""CS tables for expansion (filled in by its own change)."""
