"""Sales services: every database read and write the tools call, one module per entity or job."""
