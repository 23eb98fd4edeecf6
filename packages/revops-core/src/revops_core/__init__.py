"""revops_core: what every RevOps server is built from.

Nothing is imported here on purpose: a server's start-up cost is what its tools import, and the
handshake must not wait for SQLAlchemy. Import what you use from its module:

- `server` (Toolset, Call, build_server), `params` (shared parameter types), `paging` (keyset
  `paginate` → `Page[T]`), `plans` (`Planned[T]`, `plan_or_run`), `guards` (plans, approval, caps),
  `vendor_kit` (VendorSpec, credentials, the vendor test seam), `errors`, `money`;
- `db`, `audit`, `vault`, `events`, `integration` (vendor HTTP), `resilience`, `logs`;
- `testing` (the test kit).
"""
