"""CS tables for retention (filled in by its own change)."""
