"""Sales maths: pure functions over plain values (no database, no I/O)."""
