"""CS tables for onboarding (filled in by its own change)."""
