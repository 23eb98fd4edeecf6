"""Check a request against a Google API Discovery document (Gmail, Calendar, Analytics…).

Google publishes Discovery documents, not OpenAPI, so openapi-core cannot validate requests to its
APIs. This module does the part tests need, from the document alone: the method is found by HTTP
method + path template (`rootUrl + servicePath + path`, `{+name}` spanning slashes); required path
and query parameters must be there, every query parameter must be declared (by the method or the
API's global parameters) and have the declared type/enum/range/repetition; a method with a `request`
schema needs a JSON object body that matches it (`$ref`s resolved, unknown and read-only properties
refused, `annotations.required` for this method enforced, `format: byte` must be base64), and a
method without one must carry no body. Used by every server whose vendor fakes talk Google.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_TEMPLATE_PART = re.compile(r"\{(\+?)([A-Za-z0-9_.$-]+)\}")


class DiscoveryMismatch(AssertionError):
    """A request the Discovery document does not allow."""


class DiscoveryDoc:
    """One parsed Discovery document."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.schemas: Mapping[str, Any] = doc.get("schemas", {})
        self.global_params: Mapping[str, Any] = doc.get("parameters", {})
        base = str(doc["rootUrl"]) + str(doc.get("servicePath", ""))
        self._methods = [(m, _compile(base + m["path"])) for m in _methods(doc.get("resources", {}))]

    def method(self, http_method: str, url: str) -> tuple[Mapping[str, Any], dict[str, str]]:
        """The method a request addresses and its decoded path parameters."""
        path = url.split("?", 1)[0]
        for method, pattern in self._methods:
            if method["httpMethod"] != http_method.upper():
                continue
            found = pattern.fullmatch(path)
            if found:
                return method, {name: unquote(value) for name, value in found.groupdict().items()}
        raise DiscoveryMismatch(f"{http_method} {path}: no method of {self.doc.get('name')} matches")

    def validate(self, http_method: str, url: str, body: bytes | None = None) -> str:
        """Check one request; return the method id (e.g. `gmail.users.messages.send`)."""
        method, path_params = self.method(http_method, url)
        name = method["id"]
        params: Mapping[str, Any] = method.get("parameters", {})
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
        for pname, spec in params.items():
            where = spec.get("location")
            if where == "path":
                if not path_params.get(pname):
                    raise DiscoveryMismatch(f"{name}: path parameter {pname} is empty")
                _check_value(name, pname, spec, path_params[pname])
            elif spec.get("required") and pname not in query:
                raise DiscoveryMismatch(f"{name}: required query parameter {pname} missing")
        for pname, values in query.items():
            spec = params.get(pname) or self.global_params.get(pname)
            if spec is None or spec.get("location") != "query":
                raise DiscoveryMismatch(f"{name}: undeclared query parameter {pname}")
            if len(values) > 1 and not spec.get("repeated"):
                raise DiscoveryMismatch(f"{name}: query parameter {pname} is not repeated")
            for value in values:
                _check_value(name, pname, spec, value)
        request = method.get("request")
        if request is None:
            if body:
                raise DiscoveryMismatch(f"{name}: takes no request body")
            return str(name)
        try:
            decoded = json.loads(body or b"")
        except ValueError:
            raise DiscoveryMismatch(f"{name}: the request body is not JSON") from None
        self.check_schema(name, {"$ref": request["$ref"]}, decoded, "body")
        return str(name)

    def check_schema(self, method_id: str, schema: Mapping[str, Any], value: Any, where: str) -> None:
        """Check `value` against a schema of this document (a `$ref` or an inline schema)."""
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        kind = schema.get("type")
        if kind == "object":
            self._check_object(method_id, schema, value, where)
        elif kind == "array":
            if not isinstance(value, list):
                raise DiscoveryMismatch(f"{method_id}: {where} must be an array")
            for i, item in enumerate(value):
                self.check_schema(method_id, schema["items"], item, f"{where}[{i}]")
        else:
            _check_value(method_id, where, schema, value, json_value=True)

    def _check_object(self, method_id: str, schema: Mapping[str, Any], value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise DiscoveryMismatch(f"{method_id}: {where} must be an object")
        props: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                if props[key].get("readOnly"):
                    raise DiscoveryMismatch(f"{method_id}: {where}.{key} is read-only")
                self.check_schema(method_id, props[key], item, f"{where}.{key}")
            elif extra is not None:
                self.check_schema(method_id, extra, item, f"{where}.{key}")
            else:
                raise DiscoveryMismatch(f"{method_id}: {where}.{key} is not a property")
        for key, prop in props.items():
            if method_id in prop.get("annotations", {}).get("required", ()) and key not in value:
                raise DiscoveryMismatch(f"{method_id}: {where}.{key} is required")


def _methods(resources: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for resource in resources.values():
        found.extend(resource.get("methods", {}).values())
        found.extend(_methods(resource.get("resources", {})))
    return found


def _compile(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    last = 0
    for match in _TEMPLATE_PART.finditer(template):
        parts.append(re.escape(template[last : match.start()]))
        name = re.sub(r"\W", "_", match.group(2))
        parts.append(f"(?P<{name}>.+)" if match.group(1) else f"(?P<{name}>[^/]+)")
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts))


def _check_value(
    method_id: str, where: str, spec: Mapping[str, Any], value: Any, *, json_value: bool = False
) -> None:
    """A scalar against its declared type; query/path values arrive as text, JSON ones typed."""
    kind, fmt = spec.get("type"), spec.get("format")
    bad = DiscoveryMismatch(f"{method_id}: {where}={value!r} is not a valid {kind}/{fmt or '-'}")
    if kind == "boolean":
        if (json_value and not isinstance(value, bool)) or (
            not json_value and value not in ("true", "false")
        ):
            raise bad
        return
    if kind == "integer":
        if json_value and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad
        if not json_value and not re.fullmatch(r"-?\d+", str(value)):
            raise bad
        number = int(value)
        if ("minimum" in spec and number < int(spec["minimum"])) or (
            "maximum" in spec and number > int(spec["maximum"])
        ):
            raise bad
        return
    if kind == "number":
        if json_value and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise bad
        return
    if kind == "any" or kind is None:
        return
    if not isinstance(value, str):
        raise bad
    if "enum" in spec and value not in spec["enum"]:
        raise bad
    if fmt in ("int64", "uint64") and not re.fullmatch(r"-?\d+", value):
        raise bad
    if fmt == "byte":
        try:
            base64.b64decode(
                value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True
            )
        except (binascii.Error, ValueError):
            raise bad from None
    if fmt == "date-time" and not re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value
    ):
        raise bad


@functools.cache
def load(path: str | Path) -> DiscoveryDoc:
    """The Discovery document at `path`, parsed once per process."""
    return DiscoveryDoc(json.loads(Path(path).read_text()))
