"""server_info through the protocol: its audit figure is the chain tip, exactly the entries written."""

from __future__ import annotations

import pytest

from revops_core.audit import AuditEntry
from revops_core.testing import call_ok, connect, count_rows

pytestmark = pytest.mark.anyio


async def test_audit_entries_is_the_number_of_entries_ever_appended(cs_server):
    async with connect(cs_server) as client:
        empty = await call_ok(client, "server_info")
        for name in ("Acme", "Globex", "Initech"):
            await call_ok(client, "register_client", name=name, tier="smb")
        after = await call_ok(client, "server_info")
    assert empty["audit_entries"] == 0
    assert after["audit_entries"] == count_rows(cs_server.runtime.db, AuditEntry) == 3
