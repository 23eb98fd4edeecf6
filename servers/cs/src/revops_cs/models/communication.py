"""CS tables for communication (filled in by its own change)."""
