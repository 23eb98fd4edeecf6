"""CS tables (all prefixed `cs_`), one module per area."""
