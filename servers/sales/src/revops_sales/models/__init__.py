"""Sales tables (`sales_*`), one module per entity."""
