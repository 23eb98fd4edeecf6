"""Deterministic demo data for the CS server (same seed → same rows)."""
