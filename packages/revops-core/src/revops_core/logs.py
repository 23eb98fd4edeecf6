"""Structured JSON logs to stderr (stdout is the stdio protocol), with correlation ids and redaction."""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO, cast

import structlog
from structlog.typing import Processor

from revops_core.secret_values import REDACTED, Secret

correlation_id: ContextVar[str | None] = ContextVar("revops_correlation_id", default=None)

# Keys whose values are never logged, whatever they hold.
_SECRET_KEYS = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|cookie|master[_-]?key|private|credential|dek|kek)",
    re.IGNORECASE,
)
# Values that look like credentials even under an innocent key.
_SECRET_VALUES = re.compile(
    r"(Bearer\s+[A-Za-z0-9._~+/=-]{8,}|SG\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}|rvk_[A-Za-z0-9_-]{16,}"
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*)"
)


# Free-text fields: whatever a person typed may hold personal data, so the audit log keeps only
# that something was written, its size and a hash (enough to match it to the stored row).
_FREE_TEXT_KEYS = re.compile(
    r"^(body|comment|comments|description|notes?|message|text|content|free_text|csv|html|reason|resolution)$",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
_PHONE = re.compile(r"(?<![\w/.:-])\+?\d[\d ()-]{7,}\d(?![\w/.:-])")


def new_correlation_id() -> str:
    value = uuid.uuid4().hex[:16]
    correlation_id.set(value)
    return value


def redact(value: Any, key: str | None = None) -> Any:
    """Return `value` with secrets replaced, recursively. Used by logs and the audit log alike."""
    if key is not None and _SECRET_KEYS.search(key):
        return REDACTED
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, str):
        return _SECRET_VALUES.sub(REDACTED, value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def is_secret_key(name: str) -> bool:
    """True for a field or key whose value is a credential (`api_token`, `password`…)."""
    return bool(_SECRET_KEYS.search(name))


def mask_emails(text: str) -> str:
    """E-mail addresses as the audit log keeps them: first letter and domain (`j***@example.com`)."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


def redact_log(value: Any, key: str | None = None) -> Any:
    """`redact` plus e-mail addresses masked as in the audit log: what a log line may carry.

    Log lines keep free text and numbers (they are diagnostics); an address is personal data either
    way, and the audit log already hides it, so a log line must not be the place it leaks.
    """
    clean = redact(value, key)
    if isinstance(clean, str):
        return mask_emails(clean)
    if isinstance(clean, dict):
        return {k: redact_log(v, str(k)) for k, v in clean.items()}
    if isinstance(clean, list):
        return [redact_log(v) for v in clean]
    return clean


def _mask_phone(match: re.Match[str]) -> str:
    # Dates (2026-11-21) and short ids have fewer digits than any dialable number.
    return "[phone]" if sum(ch.isdigit() for ch in match.group()) >= 9 else match.group()


def redact_pii(value: Any, key: str | None = None) -> Any:
    """`redact` plus personal data: free-text fields become a size+hash marker, e-mail addresses
    keep their first letter and domain, phone numbers are masked. Used before audit hashing."""
    if key is not None and _SECRET_KEYS.search(key):
        return REDACTED
    if key is not None and isinstance(value, str) and _FREE_TEXT_KEYS.match(key):
        import hashlib

        digest = hashlib.sha256(value.encode()).hexdigest()[:12]
        return f"[free text: {len(value)} chars, sha256:{digest}]"
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, str):
        masked = _SECRET_VALUES.sub(REDACTED, value)
        masked = mask_emails(masked)
        return _PHONE.sub(_mask_phone, masked)
    if isinstance(value, dict):
        return {k: redact_pii(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_pii(v) for v in value]
    return value


def _redact_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key in ("timestamp", "level", "logger"):
            continue
        event[key] = redact_log(event[key], key if key != "event" else None)
    return event


def _add_correlation(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    cid = correlation_id.get()
    if cid is not None:
        event.setdefault("correlation_id", cid)
    return event


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the moment of writing, not at configuration time.

    Binding the object found at start-up breaks when it is later replaced and closed (pytest's
    capture, a daemon redirecting its streams): every log call would then raise.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Route structlog and the standard library to one JSON stream on stderr."""
    out = stream or _CurrentStderr()
    numeric = logging.getLevelName(level)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_correlation,
        structlog.processors.format_exc_info,
        _redact_processor,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # PrintLogger only calls write() and flush(), which _CurrentStderr provides.
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, out)),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # httpx/httpcore log full URLs (query strings can carry keys) at INFO; our client logs paths.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
