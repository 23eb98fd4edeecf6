"""CS tables for feedback (filled in by its own change)."""
