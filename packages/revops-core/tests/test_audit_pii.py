"""Personal data typed into a tool never reaches the audit log, whose entries cannot be edited later."""

from __future__ import annotations

import json

from revops_core import audit
from revops_core.logs import redact_pii


def test_free_text_emails_and_phones_are_redacted_before_hashing(db):
    details = {
        "arguments": {
            "client_id": 7,
            "comment": "Call Jane on +1 415 555 0199 about the renewal",
            "email": "jane.doe@example.com",
            "api_key": "SG.abcdefghijklmnop.qrstuvwxyz0123456789",
        }
    }
    with db.session(write=True) as s:
        entry = audit.append(s, actor="t", action="cs.collect_feedback", details=details)
    stored = json.loads(entry.details)["arguments"]
    assert stored["client_id"] == 7
    assert stored["comment"].startswith("[free text: 46 chars, sha256:")
    assert stored["email"] == "j***@example.com"
    assert stored["api_key"] == "***redacted***"
    text = entry.details
    for leaked in ("Jane", "415 555", "jane.doe", "SG.abc"):
        assert leaked not in text
    assert audit.verify(db).ok


def test_phone_masking_leaves_dates_and_ids_alone():
    assert redact_pii("renewal 2026-11-21, ticket 12345678") == "renewal 2026-11-21, ticket 12345678"
    assert redact_pii("ring 020 7946 0958 now") == "ring [phone] now"
