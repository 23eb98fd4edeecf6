"""Pure CS maths: no I/O, unit-tested against REFERENCE.md."""
