"""An in-memory Salesforce org at the network edge (respx), for the Salesforce client and sync tests.

It answers the token endpoint (refresh-token and JWT-bearer grants), SOQL `query` with
`nextRecordsUrl` pages, `sobjects/{type}/deleted/` and sObject collections create/update, sends
`Sforce-Limit-Info` on every API answer, and checks EVERY request before answering it:

1. against Salesforce's Postman collection (`shared/specs/salesforce_platform_apis_postman_v1.json`,
   CC0): the method and path template, the query parameters it marks as sent, the form fields of the
   token request for that grant type, and the body keys and their types where the collection's raw
   body names them (`"allOrNone": "Boolean"`, `"records": "SObject[]"`);
2. where the collection is silent, against `SHAPES` below — the shapes of Salesforce's REST API
   reference (REST API Developer Guide v59.0), written down once here.

A request matching neither is recorded in `violations` and answered 400, so `violations == []` in a
test means every request was checked.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx
from hubspot_fake import Failure, HubSpotFake

SPEC = Path("/work/shared/specs/salesforce_platform_apis_postman_v1.json")
LOGIN_HOST = "login.salesforce.com"
INSTANCE = "https://acme.my.salesforce.com"
INSTANCE_HOST = "acme.my.salesforce.com"
VERSION = "59.0"
DATA = f"/services/data/v{VERSION}"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PREFIX = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "User": "005",
    "Task": "00T",
    "Event": "00U",
    "Lead": "00Q",
}
REQUIRED = {"Account": ("Name",), "Contact": ("LastName",), "Opportunity": ("Name", "StageName", "CloseDate")}
STAGES = [
    {"ApiName": "Prospecting", "MasterLabel": "Prospecting", "IsClosed": False, "IsWon": False,
     "DefaultProbability": 10.0, "SortOrder": 1},
    {"ApiName": "Negotiation/Review", "MasterLabel": "Negotiation/Review", "IsClosed": False, "IsWon": False,
     "DefaultProbability": 90.0, "SortOrder": 2},
    {"ApiName": "Closed Won", "MasterLabel": "Closed Won", "IsClosed": True, "IsWon": True,
     "DefaultProbability": 100.0, "SortOrder": 3},
    {"ApiName": "Closed Lost", "MasterLabel": "Closed Lost", "IsClosed": True, "IsWon": False,
     "DefaultProbability": 0.0, "SortOrder": 4},
]  # fmt: skip


# --------------------------------------------------------------------------- SHAPES (REST reference)
# Where the Postman collection is silent. Each entry: method, path pattern, and a body check.
_ID = r"[A-Za-z0-9]{15,18}"
SHAPES: list[tuple[str, re.Pattern[str], str]] = [
    # "Execute a SOQL query": more results are at nextRecordsUrl, /query/{queryLocator}-{offset}.
    ("GET", re.compile(r"^/services/data/v\d+\.\d/query/[A-Za-z0-9]+-\d+$"), "none"),
    # "Update Multiple Records": PATCH /composite/sobjects (the collection puts an sObject segment in
    # this path; the reference has none and types each record by `attributes.type`).
    ("PATCH", re.compile(r"^/services/data/v\d+\.\d/composite/sobjects$"), "collection_update"),
]


def _collection_body(body: Any, *, update: bool) -> list[str]:
    """sObject collections: `{"allOrNone": bool, "records": [≤ 200 × {"attributes": {"type"}, …}]}`;
    an update names each record's `Id`, a create none."""
    problems = []
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not 1 <= len(records) <= 200:
        return ["records must be a list of 1…200"]
    for record in records:
        kind = record.get("attributes", {}).get("type") if isinstance(record, dict) else None
        if kind not in REQUIRED:
            problems.append(f"record without a known attributes.type: {record}")
        elif update != isinstance(record.get("Id"), str):
            problems.append(f"{'update needs' if update else 'create takes no'} Id: {record}")
    return problems


def _soql(q: str) -> list[str]:
    """A SOQL SELECT the fake understands (the only statement shape the client sends)."""
    return (
        []
        if re.match(r"^SELECT [\w, ]+ FROM \w+( WHERE .+)?( ORDER BY [\w, ]+)?$", q)
        else [f"bad SOQL {q!r}"]
    )


_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?(Z|[+-]\d\d:?\d\d)$")


class Collection:
    """The Postman collection's endpoints as (method, path regex, query keys, form keys, body types)."""

    def __init__(self, path: Path = SPEC) -> None:
        data = json.loads(path.read_text())
        self.endpoints: list[dict[str, Any]] = []
        for request in data["requests"]:
            url = str(request["url"]).split("?", 1)[0]
            url = re.sub(r"^\{\{(_endpoint|url)\}\}(\{\{site\}\})?", "", url)
            if url.startswith("http"):
                continue
            pattern = re.escape(url.rstrip("/"))
            pattern = pattern.replace(re.escape("{{version}}"), r"\d+\.\d")
            pattern = re.sub(r"<[A-Z_]+>|:[A-Za-z_]+|\\\{\\\{[A-Za-z_]+\\\}\\\}", r"[^/]+", pattern)
            query = [
                q["key"]
                for q in request.get("queryParams") or []
                if q.get("enabled", True) and "optional" not in str(q.get("description", "")).lower()
            ]
            form = {
                d["key"]: d.get("value")
                for d in request.get("data") or []
                if isinstance(d, dict) and d.get("enabled", True)
            }
            raw = request.get("rawModeData")
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            self.endpoints.append(
                {
                    "name": request["name"],
                    "method": request["method"],
                    "path": re.compile(f"^{pattern}/?$"),
                    "query": query,
                    "form": form,
                    "body": body if isinstance(body, dict) else None,
                }
            )

    def match(self, request: httpx.Request) -> tuple[str | None, list[str]]:
        """(the collection request it matches or None, problems against it)."""
        path = request.url.path
        found = [e for e in self.endpoints if e["method"] == request.method and e["path"].match(path)]
        if not found:
            return None, []
        query = parse_qs(request.url.query.decode(), keep_blank_values=True)
        if path.endswith("/oauth2/token"):
            form = parse_qs(request.content.decode())
            grant = form.get("grant_type", [""])[0]
            flows = [e for e in found if e["form"].get("grant_type") == grant]
            if not flows:
                return found[0]["name"], [f"grant_type {grant!r} is no flow of the collection"]
            missing = [k for k in flows[0]["form"] if not form.get(k)]
            return flows[0]["name"], [f"form field {k} missing" for k in missing]
        endpoint = max(found, key=lambda e: len(e["query"]))  # e.g. /query/ over /query/{id}
        problems = [f"query parameter {k} missing" for k in endpoint["query"] if not query.get(k, [""])[0]]
        if endpoint["body"] is not None:
            sent = json.loads(request.content or b"null")
            types = {"Boolean": bool, "SObject[]": list}
            for key, kind in endpoint["body"].items():
                if key in (sent or {}) and kind in types and not isinstance(sent[key], types[kind]):
                    problems.append(f"body {key} is not {kind}")
        return endpoint["name"], problems


COLLECTION = Collection()


def validate(request: httpx.Request) -> list[str]:
    """Problems of one request: the collection where it describes the endpoint, else SHAPES."""
    path = request.url.path
    name, problems = COLLECTION.match(request)
    json_body = request.headers.get("content-type", "").startswith("application/json")
    body = json.loads(request.content) if request.content and json_body else None
    if name is None:
        shape = next((s for s in SHAPES if s[0] == request.method and s[1].match(path)), None)
        if shape is None:
            return [f"{request.method} {path}: described neither by the collection nor by SHAPES"]
        if shape[2] == "collection_update":
            problems = _collection_body(body, update=True)
        elif request.url.query:
            problems = ["query-more takes no parameters"]
        return problems
    query = parse_qs(request.url.query.decode())
    if name == "Query":
        problems += _soql(query.get("q", [""])[0])
    if name == "SObject Get Deleted":
        problems += [
            f"{k} is not an ISO dateTime"
            for k in ("start", "end")
            if not _DATETIME.match(query.get(k, [""])[0])
        ]
    if name == "SObject Collections Create":
        problems += _collection_body(body, update=False)
    if not path.endswith("/oauth2/token") and not request.headers.get("authorization", "").startswith(
        "Bearer "
    ):
        problems.append("no bearer token")
    return problems


# --------------------------------------------------------------------------- the org


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


@dataclass
class SalesforceFake:
    page_size: int = 2000
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in PREFIX})
    deleted_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)  # grant types exchanged at the token endpoint
    jwt_public_key: Any = None  # checks the JWT assertion's RS256 signature
    api_used: int = 100
    api_max: int = 15000
    on_request: Callable[[str, int], None] | None = None
    _next: int = 0
    _tick: int = 0
    _cursors: dict[str, tuple[str, list[dict[str, Any]], list[str]]] = field(default_factory=dict)

    # ------------------------------------------------------------------ seeding

    def now(self) -> datetime:
        self._tick += 1
        return T0 + timedelta(seconds=self._tick)

    def add(self, sobject: str, **values: Any) -> str:
        self._next += 1
        rid = f"{PREFIX[sobject]}{self._next:012d}AAA"
        self.objects[sobject][rid] = {"Id": rid, **values, "SystemModstamp": stamp(self.now())}
        return rid

    def change(self, sobject: str, rid: str, **values: Any) -> None:
        self.objects[sobject][rid].update(values, SystemModstamp=stamp(self.now()))

    def delete(self, sobject: str, rid: str, at: datetime) -> None:
        self.objects[sobject].pop(rid)
        self.deleted_rows.setdefault(sobject, []).append({"id": rid, "deletedDate": stamp(at)})

    # ------------------------------------------------------------------ wiring

    def mount(self, mock: respx.MockRouter) -> None:
        mock.route(host=LOGIN_HOST).mock(side_effect=self.handle)
        mock.route(host=INSTANCE_HOST).mock(side_effect=self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        problems = validate(request)
        if problems:
            self.violations.extend(f"{request.method} {request.url.path}: {p}" for p in problems)
            return httpx.Response(400, json=[{"errorCode": "MALFORMED_QUERY", "message": "invalid"}])
        kind, answer = self._route(request)
        self.calls[kind] += 1
        if self.on_request is not None:
            self.on_request(kind, self.calls[kind])
        if kind != "token":
            self.api_used += 1
        failed = self._failure(kind, request)
        if failed is not None:
            return failed
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if kind != "token" and bearer not in self.tokens:
            return httpx.Response(
                401, json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            )
        response: httpx.Response = answer()
        if kind != "token":
            response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_max}"
        return response

    # The same failure injection as the HubSpot fake: a kind, the call numbers, a status or a timeout.
    _failure = HubSpotFake._failure

    def _route(self, request: httpx.Request) -> tuple[str, Callable[[], httpx.Response]]:
        path = request.url.path
        if path.endswith("/oauth2/token"):
            return "token", lambda: self._token(request)
        parts = path.split("/")[4:]  # after /services/data/vXX.X
        body = json.loads(request.content) if request.content else None
        if parts[0] == "query" and len(parts) > 1 and parts[1]:
            locator = parts[1]
            return f"query:{self._cursors[locator.split('-')[0]][0]}", lambda: self._more(locator)
        if parts[0] == "query":
            q = parse_qs(request.url.query.decode())["q"][0]
            sobject = re.search(r" FROM (\w+)", q).group(1)  # type: ignore[union-attr]
            return f"query:{sobject}", lambda: self._query(q)
        if parts[0] == "sobjects":
            query = parse_qs(request.url.query.decode())
            return f"deleted:{parts[1]}", lambda: self._deleted(parts[1], query)
        sobject = body["records"][0]["attributes"]["type"]
        action = "create" if request.method == "POST" else "update"
        return f"{action}:{sobject}", lambda: self._write(action, body["records"])

    # ------------------------------------------------------------------ endpoints

    def _query(self, q: str) -> httpx.Response:
        fields = [f.strip() for f in q.removeprefix("SELECT ").split(" FROM ")[0].split(",")]
        sobject = re.search(r" FROM (\w+)", q).group(1)  # type: ignore[union-attr]
        if sobject == "OpportunityStage":
            rows = [dict(s) for s in STAGES]
        else:
            rows = [dict(r) for r in self.objects[sobject].values()]
        since = re.search(r"SystemModstamp >= (\S+)", q)
        if since:
            at = datetime.fromisoformat(since.group(1).replace("Z", "+00:00"))
            rows = [r for r in rows if datetime.fromisoformat(r["SystemModstamp"]) >= at]
        if "ORDER BY SystemModstamp, Id" in q:
            rows.sort(key=lambda r: (r["SystemModstamp"], r["Id"]))
        locator = f"01g{len(self._cursors) + 1:012d}"
        self._cursors[locator] = (sobject, rows, fields)
        return self._slice(locator, 0)

    def _more(self, locator: str) -> httpx.Response:
        key, offset = locator.split("-")
        return self._slice(key, int(offset))

    def _slice(self, locator: str, offset: int) -> httpx.Response:
        sobject, rows, fields = self._cursors[locator]
        chunk = rows[offset : offset + self.page_size]
        records = [
            {"attributes": {"type": sobject, "url": f"{DATA}/sobjects/{sobject}/{r.get('Id')}"},
             **{f: r.get(f) for f in fields}}
            for r in chunk
        ]  # fmt: skip
        done = offset + self.page_size >= len(rows)
        body: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": records}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/v{VERSION}/query/{locator}-{offset + self.page_size}"
        return httpx.Response(200, json=body)

    def _deleted(self, sobject: str, query: dict[str, list[str]]) -> httpx.Response:
        start = datetime.fromisoformat(query["start"][0].replace("Z", "+00:00")).replace(
            second=0, microsecond=0
        )
        end = datetime.fromisoformat(query["end"][0].replace("Z", "+00:00")).replace(second=0, microsecond=0)
        rows = [
            r
            for r in self.deleted_rows.get(sobject, [])
            if start <= datetime.fromisoformat(r["deletedDate"]) <= end
        ]
        body = {"deletedRecords": rows, "earliestDateAvailable": stamp(T0), "latestDateCovered": stamp(end)}
        return httpx.Response(200, json=body)

    def _write(self, action: str, records: list[dict[str, Any]]) -> httpx.Response:
        results = []
        for record in records:
            sobject = record["attributes"]["type"]
            values = {k: v for k, v in record.items() if k not in ("attributes", "Id")}
            if action == "update":
                if record["Id"] not in self.objects[sobject]:
                    results.append(
                        {
                            "id": record["Id"],
                            "success": False,
                            "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "deleted"}],
                        }
                    )
                    continue
                self.change(sobject, record["Id"], **values)
                results.append({"id": record["Id"], "success": True, "errors": []})
                continue
            missing = [f for f in REQUIRED[sobject] if values.get(f) in (None, "")]
            if missing:
                results.append({"success": False, "errors": [
                    {"statusCode": "REQUIRED_FIELD_MISSING",
                     "message": f"Required fields are missing: {missing}", "fields": missing}]})  # fmt: skip
                continue
            results.append({"id": self.add(sobject, **values), "success": True, "errors": []})
        return httpx.Response(200, json=results)

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        grant = form["grant_type"]
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" and not self._assertion_ok(
            form["assertion"]
        ):
            return httpx.Response(
                400, json={"error": "invalid_grant", "error_description": "invalid assertion"}
            )
        self.grants.append(grant)
        access = f"00Dxx!session-{len(self.grants)}"
        self.tokens.append(access)
        return httpx.Response(
            200,
            json={"access_token": access, "instance_url": INSTANCE, "id": f"https://{LOGIN_HOST}/id/00D/005",
                  "token_type": "Bearer", "issued_at": "1772355600000", "signature": "c2lnbmF0dXJl"},
        )  # fmt: skip

    def _assertion_ok(self, assertion: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        head, claims, signature = assertion.split(".")
        pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
        try:
            self.jwt_public_key.verify(
                pad(signature), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return False
        self.jwt_claims = json.loads(pad(claims))
        return json.loads(pad(head)) == {"alg": "RS256"}
