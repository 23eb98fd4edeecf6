"""Compatibility re-export of `revops_cs.output` for modules not yet switched over; to be deleted."""

from revops_cs.output import MAX_ID, Out, arg  # noqa: F401
