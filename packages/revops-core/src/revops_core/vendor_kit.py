"""The vendor kit: what a vendor needs from the vault, one way to read it, one seam for tests.

Every vendor module declares a `VendorSpec` (its vault provider name, the fields it needs and how
to set them) and reads its credentials with `require_fields` / `load_fields`, which look for this
server's own vault entry first and then the suite-wide (`*`) one. `revops doctor` and the set-up
wizard read the same specs, so "what is configured" has one answer.

Vendor clients take keyword options (`transport`, `clock`, `redis`…) from `call.vendor_options(
spec.provider)`: empty in production, and the one documented seam tests use to put a fake at the
network edge (`revops_core.testing.override_vendor(server, spec, transport=..., clock=...)`).
Vault reads are audited (`vault.decrypt`) in a transaction of their own: call these before the
tool's own transaction, from a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from revops_core.errors import ConfigurationError, NotFound
from revops_core.secret_values import Secret

if TYPE_CHECKING:
    from revops_core.server import Runtime

SUITE_WIDE = "*"


@dataclass(frozen=True)
class VendorSpec:
    """A vendor as the vault knows it."""

    provider: str
    """Vault provider name (`revops vault set <provider> …`)."""
    title: str
    """Human name for messages (e.g. "Zendesk")."""
    fields: tuple[str, ...]
    """Fields every call needs."""
    optional: tuple[str, ...] = ()
    """Fields some calls need (ask for them with `require_fields(..., also=(...))`)."""
    placeholders: Mapping[str, str] = field(default_factory=dict)
    """What to type for each field in the set-up command (default `<field>`)."""

    def setup_command(self, missing: tuple[str, ...] | None = None) -> str:
        """The exact CLI command that stores the missing fields."""
        names = missing or self.fields
        return f"revops vault set {self.provider} " + " ".join(
            f"{name}={self.placeholders.get(name, f'<{name}>')}" for name in names
        )

    def not_configured_reason(self, missing: tuple[str, ...]) -> str:
        fields = ", ".join(missing)
        return f"{self.title} is not configured (missing {fields}): run `{self.setup_command(missing)}`."

    def not_configured(self, missing: tuple[str, ...]) -> ConfigurationError:
        # When only fields some calls need are missing (Intercom's admin_id), the error names that
        # field: the vendor itself is connected, one value is not stored.
        only_optional = bool(missing) and all(name in self.optional for name in missing)
        return ConfigurationError(
            f"{self.title} is not configured (missing {', '.join(missing)}); nothing was sent.",
            field=missing[0] if only_optional else self.provider,
            hint=f"Run `{self.setup_command(missing)}`, then call again.",
        )


def _present(value: Secret | str | None) -> bool:
    if value is None:
        return False
    raw = value.reveal() if isinstance(value, Secret) else str(value)
    return bool(raw.strip())


def load_fields(
    runtime: Runtime, spec: VendorSpec, *, also: tuple[str, ...] = ()
) -> dict[str, Secret] | tuple[str, ...]:
    """The vendor's vault fields (this server's entry, else the suite-wide one), or those missing.

    An entry is used whole: fields are never mixed from two entries, so a server-specific entry
    fully overrides the suite-wide one.
    """
    from revops_core.vault import Vault

    needed = spec.fields + also
    vault = Vault(runtime.db, runtime.settings)
    for server in dict.fromkeys((runtime.server_name, SUITE_WIDE)):
        try:
            values = vault.get(spec.provider, "default", server=server)
        except NotFound:
            continue
        missing = tuple(name for name in needed if not _present(values.get(name)))
        return missing or values
    return needed


def require_fields(runtime: Runtime, spec: VendorSpec, *, also: tuple[str, ...] = ()) -> dict[str, Secret]:
    """The vendor's vault fields, or a `configuration_error` naming the `revops vault set` to run."""
    found = load_fields(runtime, spec, also=also)
    if isinstance(found, tuple):
        raise spec.not_configured(found)
    return found


def text(values: Mapping[str, Secret], name: str) -> str:
    """A non-secret field's value as plain text (a subdomain, an e-mail address, an id)."""
    value = values.get(name)
    if value is None:
        return ""
    return (value.reveal() if isinstance(value, Secret) else str(value)).strip()
