"""An in-memory HubSpot CRM at the network edge (respx), for the sync tests and the bench.

It answers the endpoints the Sales client uses — search, archived lists, batch create/update/archive,
associations v4 batch read, pipelines, owners and the OAuth token endpoint — and validates EVERY
request against the OpenAPI document derived from HubSpot's SDK (`spec_validation`, shared with the
CS tests). A request that does not match is recorded in `violations` and answered 400, so a test
asserting `fake.violations == []` fails on any undocumented shape.

`bench_sync(n)` is the bench entry point: sync `n` changed contacts against the fake and return
records per second.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx
import spec_validation as sv

HUBSPOT_SPEC = "hubspot_crm_v3_derived_from_sdk_12.0.0.json"
HOST = "api.hubapi.com"
PRIVATE_TOKEN = "pat-na1-5ecret-token"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MODIFIED = {
    "companies": "hs_lastmodifieddate",
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "notes": "hs_lastmodifieddate",
    "tasks": "hs_lastmodifieddate",
}
DEFAULT_PIPELINE = {
    "id": "default",
    "label": "Sales Pipeline",
    "displayOrder": 0,
    "archived": False,
    "createdAt": "2026-01-01T00:00:00.000Z",
    "updatedAt": "2026-01-01T00:00:00.000Z",
    "stages": [
        {"id": sid, "label": label, "displayOrder": i, "archived": False, "metadata": meta,
         "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z"}
        for i, (sid, label, meta) in enumerate(
            [
                ("appointmentscheduled", "Appointment Scheduled",
                 {"probability": "0.2", "isClosed": "false"}),
                ("contractsent", "Contract Sent", {"probability": "0.8", "isClosed": "false"}),
                ("closedwon", "Closed Won", {"probability": "1.0", "isClosed": "true"}),
                ("closedlost", "Closed Lost", {"probability": "0.0", "isClosed": "true"}),
            ]
        )
    ],
}  # fmt: skip


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass
class Failure:
    kind: str  # e.g. "search:contacts", "batch_create:deals", "token"
    first_call: int  # 1-based call number of that kind from which it fails
    status: int | None  # HTTP status, None for a timeout, 200 for a malformed body
    times: int | None = None  # how many calls fail (None: all from first_call on)
    retry_after: str | None = None


@dataclass
class HubSpotFake:
    page_size: int = 100
    token_lifetime: int = 1800
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {"companies": {}, "contacts": {}, "deals": {}, "notes": {}, "tasks": {}}
    )
    associations: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    pipelines: list[dict[str, Any]] = field(
        default_factory=lambda: [json.loads(json.dumps(DEFAULT_PIPELINE))]
    )
    owners: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=lambda: [PRIVATE_TOKEN])
    refresh_tokens: list[str] = field(default_factory=list)
    on_request: Callable[[str, int], None] | None = None  # (kind, call number), e.g. to move a clock
    _next_id: int = 1000
    _tick: int = 0

    # ------------------------------------------------------------------ seeding

    def now(self) -> datetime:
        self._tick += 1
        return T0 + timedelta(seconds=self._tick)

    def add(
        self,
        obj: str,
        properties: dict[str, str],
        *,
        archived: bool = False,
        companies: list[str] = (),
        to: dict[str, list[str]] | None = None,
    ) -> str:
        self._next_id += 1
        rid = str(self._next_id)
        at = self.now()
        self.objects[obj][rid] = {
            "id": rid,
            "properties": dict(properties),
            "createdAt": iso(at),
            "updatedAt": iso(at),
            "archived": archived,
            **({"archivedAt": iso(at)} if archived else {}),
        }
        for other, ids in {**({"companies": list(companies)} if companies else {}), **(to or {})}.items():
            self.associations.setdefault((obj, other), {})[rid] = list(ids)
        return rid

    def change(self, obj: str, rid: str, **properties: str) -> None:
        record = self.objects[obj][rid]
        record["properties"].update(properties)
        record["updatedAt"] = iso(self.now())

    def archive(self, obj: str, rid: str) -> None:
        record = self.objects[obj][rid]
        record["archived"], record["archivedAt"] = True, iso(self.now())

    def add_owner(self, oid: str, email: str) -> None:
        self.owners.append(
            {"id": oid, "email": email, "type": "PERSON", "archived": False,
             "createdAt": iso(T0), "updatedAt": iso(T0)}
        )  # fmt: skip

    def live(self, obj: str) -> list[dict[str, Any]]:
        return [r for r in self.objects[obj].values() if not r["archived"]]

    # ------------------------------------------------------------------ wiring

    def mount(self, mock: respx.MockRouter) -> None:
        mock.route(host=HOST).mock(side_effect=self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        try:
            with warnings.catch_warnings():
                # openapi-core cannot check the oauth2 scheme and warns; `handle` checks the bearer itself.
                warnings.filterwarnings("ignore", message="Unsupported scheme type", category=UserWarning)
                sv.validate(HUBSPOT_SPEC, request)
        except Exception as exc:  # openapi-core raises one class per kind of mismatch
            self.violations.append(f"{request.method} {request.url.path}: {type(exc).__name__}: {exc}")
            return httpx.Response(400, json={"status": "error", "message": "invalid request"})
        kind, answer = self._route(request)
        self.calls[kind] += 1
        if self.on_request is not None:
            self.on_request(kind, self.calls[kind])
        failed = self._failure(kind, request)
        if failed is not None:
            return failed
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if kind != "token" and bearer not in self.tokens:
            return httpx.Response(401, json={"status": "error", "category": "INVALID_AUTHENTICATION"})
        return answer()

    def _failure(self, kind: str, request: httpx.Request) -> httpx.Response | None:
        n = self.calls[kind]
        for failure in self.failures:
            last = None if failure.times is None else failure.first_call + failure.times - 1
            if failure.kind == kind and n >= failure.first_call and (last is None or n <= last):
                if failure.status is None:
                    raise httpx.ReadTimeout("no answer", request=request)
                if failure.status == 200:
                    return httpx.Response(
                        200, content=b"<html>oops</html>", headers={"Content-Type": "application/json"}
                    )
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                return httpx.Response(failure.status, json={"status": "error"}, headers=headers)
        return None

    def _route(self, request: httpx.Request) -> tuple[str, Any]:
        parts = request.url.path.strip("/").split("/")
        body = (
            json.loads(request.content)
            if request.content and request.method == "POST" and parts[0] == "crm"
            else {}
        )
        if parts[:2] == ["oauth", "v1"]:
            return "token", lambda: self._token(request)
        if parts[:3] == ["crm", "v3", "objects"]:
            obj = parts[3]
            if len(parts) == 5 and parts[4] == "search":
                return f"search:{obj}", lambda: self._search(obj, body)
            if len(parts) == 6 and parts[4] == "batch":
                return f"batch_{parts[5]}:{obj}", lambda: self._batch(obj, parts[5], body)
            return f"archived:{obj}", lambda: self._archived(obj, request)
        if parts[:2] == ["crm", "v4"]:
            action = "/".join(parts[6:])
            return f"associations_{action}:{parts[3]}", lambda: self._associations(
                parts[3], parts[4], action, body
            )
        if parts[:3] == ["crm", "v3", "pipelines"]:
            return "pipelines", lambda: httpx.Response(200, json={"results": self.pipelines})
        return "owners", lambda: httpx.Response(200, json={"results": self.owners})

    # ------------------------------------------------------------------ endpoints

    def _page(
        self, rows: list[dict[str, Any]], after: str | None, limit: int, wanted: list[str] | None
    ) -> dict[str, Any]:
        start = int(after or 0)
        size = min(limit, self.page_size)
        chunk = rows[start : start + size]
        results = [
            {**r, "properties": {k: v for k, v in r["properties"].items() if wanted is None or k in wanted}}
            for r in chunk
        ]
        page: dict[str, Any] = {"results": results}
        if start + size < len(rows):
            page["paging"] = {"next": {"after": str(start + size)}}
        return page

    def _search(self, obj: str, body: dict[str, Any]) -> httpx.Response:
        rows = self.live(obj)
        for group in body.get("filterGroups", []):
            for f in group["filters"]:
                assert (f["propertyName"], f["operator"]) == (MODIFIED[obj], "GTE"), f
                since = datetime.fromtimestamp(int(f["value"]) / 1000, UTC)
                rows = [
                    r for r in rows if datetime.fromisoformat(r["updatedAt"].replace("Z", "+00:00")) >= since
                ]
        assert body.get("sorts") == [MODIFIED[obj]], body
        rows.sort(key=lambda r: (r["updatedAt"], int(r["id"])))
        page = self._page(rows, body.get("after"), body.get("limit", 10), body.get("properties"))
        return httpx.Response(200, json={"total": len(rows), **page})

    def _archived(self, obj: str, request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        rows = [r for r in self.objects[obj].values() if r["archived"]]
        after = query.get("after", [None])[0]
        return httpx.Response(200, json=self._page(rows, after, int(query.get("limit", ["10"])[0]), None))

    def _batch(self, obj: str, action: str, body: dict[str, Any]) -> httpx.Response:
        stamp = {"status": "COMPLETE", "startedAt": iso(T0), "completedAt": iso(T0)}
        if action == "create":
            results = []
            for entry in body["inputs"]:
                rid = self.add(obj, entry["properties"])
                for assoc in entry.get("associations", []):
                    key = (obj, "companies")
                    self.associations.setdefault(key, {}).setdefault(rid, []).append(assoc["to"]["id"])
                results.append(
                    {**self.objects[obj][rid], "objectWriteTraceId": entry.get("objectWriteTraceId")}
                )
            return httpx.Response(201, json={**stamp, "results": results})
        if action == "update":
            results = []
            for entry in body["inputs"]:
                self.change(obj, entry["id"], **entry["properties"])
                results.append(self.objects[obj][entry["id"]])
            return httpx.Response(200, json={**stamp, "results": results})
        for entry in body["inputs"]:
            self.archive(obj, entry["id"])
        return httpx.Response(204)

    def _associations(
        self, from_type: str, to_type: str, action: str, body: dict[str, Any]
    ) -> httpx.Response:
        known = self.associations.setdefault((from_type, to_type), {})
        if action == "associate/default":
            for e in body["inputs"]:
                targets = known.setdefault(e["from"]["id"], [])
                if e["to"]["id"] not in targets:
                    targets.append(e["to"]["id"])
            return httpx.Response(
                200, json={"status": "COMPLETE", "startedAt": iso(T0), "completedAt": iso(T0), "results": []}
            )
        if action == "archive":
            for e in body["inputs"]:
                gone = {t["id"] for t in e["to"]}
                known[e["from"]["id"]] = [t for t in known.get(e["from"]["id"], []) if t not in gone]
            return httpx.Response(204)
        results = [
            {"from": {"id": e["id"]}, "to": [
                {"toObjectId": c,
                 "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 5, "label": None}]}
                for c in known.get(e["id"], [])
            ]}
            for e in body["inputs"]
        ]  # fmt: skip
        return httpx.Response(
            200, json={"status": "COMPLETE", "startedAt": iso(T0), "completedAt": iso(T0), "results": results}
        )

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        if form.get("grant_type") != ["refresh_token"] or not form.get("refresh_token"):
            return httpx.Response(400, json={"error": "invalid_request"})
        self.refresh_tokens.append(form["refresh_token"][0])
        access = f"oauth-access-{len(self.refresh_tokens)}"
        self.tokens.append(access)
        return httpx.Response(
            200,
            json={
                "access_token": access,
                "refresh_token": "rotated-refresh",
                "expires_in": self.token_lifetime,
            },
        )


# --------------------------------------------------------------------------- the bench


async def bench_sync(n: int) -> float:
    """Pull `n` changed contacts from the fake into a fresh embedded database; records per second.

    Network I/O is in memory (respx, each request still spec-validated) and waits run on a fake
    clock, so this measures our own sync path: the pages, their transactions and the services.
    On the 2-core dev machine: about 530 records/s for n=1000 (embedded SQLite).
    """
    from revops_core.clock import FakeClock
    from revops_core.settings import Settings
    from revops_core.testing import call_ok, connect, override_vendor
    from revops_core.vault import Vault
    from revops_sales.server import create_server

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            data_dir=Path(folder), database_url=None, redis_url=None, master_key=None,
            auto_migrate=True, actor="bench", toolsets=["all"], breaker_min_calls=100_000,
        )  # fmt: skip
        server = create_server(settings)
        try:
            Vault(server.runtime.db, settings).set("hubspot", "default", {"access_token": PRIVATE_TOKEN})
            override_vendor(server, "hubspot", clock=FakeClock())
            fake = HubSpotFake()
            for i in range(n):
                fake.add(
                    "contacts", {"email": f"c{i}@bench.test", "firstname": f"C{i}", MODIFIED["contacts"]: "0"}
                )
            with respx.mock() as mock:
                fake.mount(mock)
                async with connect(server) as client:
                    started = time.perf_counter()
                    result = await call_ok(client, "sync_crm", objects=["contacts"], max_pages=1000)
                    elapsed = time.perf_counter() - started
            if result["created"] != n:
                raise RuntimeError(f"bench sync created {result['created']} of {n} contacts")
            return n / elapsed
        finally:
            server.runtime.db.dispose()
