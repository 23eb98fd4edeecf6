"""Validate the requests our vendor clients send against the vendors' published API descriptions.

`openapi-core` does the work (operation lookup by method + path template, `$ref` resolution, OpenAPI
3.0 `nullable` and 3.1 / JSON Schema 2020-12 semantics, security schemes, headers, query and body);
this module only adapts an `httpx.Request` (what respx records) to its request protocol and loads each
spec once per test session (the Intercom description is 878 KB).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

# The team's reference shelf sits beside the repository (`../shared/specs`); CI clones the same way.
SPECS = Path(
    os.environ.get("REVOPS_SPECS_DIR") or Path(__file__).resolve().parents[3].parent / "shared" / "specs"
)


class HttpxOpenAPIRequest:
    """An `httpx.Request` seen through openapi-core's request protocol."""

    def __init__(self, request: httpx.Request, host_url: str | None = None) -> None:
        self.request = request
        url = request.url
        self.host_url = host_url or f"{url.scheme}://{url.netloc.decode()}"
        self.path = url.path
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query.decode())),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )

    @property
    def body(self) -> bytes | None:
        return self.request.content or None

    @property
    def content_type(self) -> str:
        return self.request.headers.get("content-type", "application/json").split(";")[0]


@functools.cache
def load(name: str) -> OpenAPI:
    """The parsed description `name` (file in ../shared/specs), cached for the session."""
    path = SPECS / name
    if not path.is_file():  # never skip: an unvalidated vendor request is exactly what we must not ship
        raise FileNotFoundError(f"{path} not found; set REVOPS_SPECS_DIR to the folder with the vendor specs")
    text = path.read_text()
    spec: dict[str, Any] = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    # The published Intercom description has a path parameter its operation never declares
    # (/export/reporting_data/{job_identifier}); checking the document itself would refuse to load it.
    # Requests are still validated operation by operation.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def validate(spec_name: str, request: httpx.Request, *, host_url: str | None = None) -> None:
    """Raise (openapi-core's validation error) unless `request` matches an operation of the spec."""
    load(spec_name).validate_request(HttpxOpenAPIRequest(request, host_url))


def validate_all(spec_name: str, calls: Any, *, host_url: str | None = None) -> int:
    """Validate every request of a respx route's (or router's) calls; the number validated."""
    n = 0
    for call in calls:
        validate(spec_name, call.request, host_url=host_url)
        n += 1
    return n


SENDGRID = "sendgrid_mail_v3.json"
INTERCOM = "intercom_2.14.yaml"
