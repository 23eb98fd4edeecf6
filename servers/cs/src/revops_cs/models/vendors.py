"""CS tables for vendors (filled in by its own change)."""
