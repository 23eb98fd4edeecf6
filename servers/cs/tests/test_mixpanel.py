"""import_mixpanel_usage through the protocol, with Mixpanel faked at the network edge (respx).

Mixpanel publishes no machine-readable description of these endpoints, so requests are validated
against small JSON Schemas written from the documented shapes (raw export query, engage `$set` form).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import jsonschema
import pytest
import respx
from comm_helpers import steady_settings
from factories import add_client, add_contact
from sqlalchemy import func
from sqlmodel import select

from revops_core.clock import FakeClock
from revops_core.testing import call_error, connect, error_of, override_vendor
from revops_core.vault import Vault
from revops_cs.models.usage import CsUsageEvent

pytestmark = pytest.mark.anyio
SECRET = "mp-sa-5ecret"
EXPORT = "https://data.mixpanel.com/api/2.0/export"
ENGAGE = "https://api.mixpanel.com/engage"


@pytest.fixture
def settings(make_settings):
    return steady_settings(make_settings)


# https://developer.mixpanel.com/reference/raw-event-export — query parameters.
EXPORT_QUERY = {
    "type": "object",
    "required": ["from_date", "to_date", "project_id"],
    "additionalProperties": False,
    "properties": {
        "from_date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "to_date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "project_id": {"type": "string", "pattern": r"^\d+$"},
        "event": {"type": "string"},
        "where": {"type": "string"},
        "limit": {"type": "string"},
    },
}
# https://developer.mixpanel.com/reference/profile-set — form field `data`: a list of updates.
ENGAGE_DATA = {
    "type": "array",
    "minItems": 1,
    "maxItems": 2000,
    "items": {
        "type": "object",
        "required": ["$token", "$distinct_id", "$set"],
        "additionalProperties": False,
        "properties": {
            "$token": {"type": "string", "minLength": 1},
            "$distinct_id": {"type": "string", "minLength": 1},
            "$set": {"type": "object"},
        },
    },
}


def validate_export(request: httpx.Request) -> None:
    assert request.method == "GET"
    query = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
    jsonschema.validate(query, EXPORT_QUERY)
    user, _, secret = (
        base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode().partition(":")
    )
    assert (user, secret) == ("sa.user", SECRET)


def validate_engage(request: httpx.Request) -> list[dict[str, Any]]:
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    data = json.loads(parse_qs(request.content.decode())["data"][0])
    jsonschema.validate(data, ENGAGE_DATA)
    return data


def usage_rows(server: Any) -> int:
    with server.runtime.db.session() as s:
        return int(s.exec(select(func.count()).select_from(CsUsageEvent)).one())


@pytest.fixture
def mp(cs_server, settings) -> dict[str, Any]:
    Vault(cs_server.runtime.db, settings).set(
        "mixpanel",
        "default",
        {
            "service_account_username": "sa.user",
            "service_account_secret": SECRET,
            "project_id": "31337",
            "project_token": "tok123",
        },
    )
    clock = FakeClock()
    override_vendor(cs_server, "mixpanel", clock=clock)
    with cs_server.runtime.db.session(write=True) as s:
        c = add_client(s, "Acme", external_ids=json.dumps({"mixpanel": "acme-co"}))
        add_contact(s, c, "ann@acme.test")
        return {"server": cs_server, "clock": clock, "client": c.id}


def line(event: str, insert_id: str | None, **props: Any) -> str:
    p = {"time": 1_780_000_000, "distinct_id": "u-1", **props}
    if insert_id:
        p["$insert_id"] = insert_id
    return json.dumps({"event": event, "properties": p})


def ndjson(*lines: str) -> httpx.Response:
    return httpx.Response(200, content=("\n".join(lines) + "\n").encode())


async def run(server: Any, progress: list[Any] | None = None, **args: Any) -> Any:
    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        if progress is not None:
            progress.append((done, total, message))

    async with connect(server) as client:
        return await client.call_tool("import_mixpanel_usage", args, progress_callback=on_progress)


async def test_export_is_mapped_deduped_and_unmapped_events_are_counted(mp):
    server, cid = mp["server"], mp["client"]
    body = [
        line("Viewed Report", "i1", client_id=cid, feature="reports"),
        line("$session_start", "i2", client_id="acme-co"),
        line("login", "i3", client_id="zzz"),
        line("login", "i4"),
        line("Viewed Report", "i1", client_id=cid),  # Mixpanel may repeat an event in an export
    ]
    progress: list[Any] = []
    args = {"from_date": "2026-05-01", "to_date": "2026-05-31"}
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(EXPORT).mock(side_effect=[ndjson(*body), ndjson(*body)])
        first = await run(server, progress, **args)
        again = await run(server, **args)
    for call in route.calls:
        validate_export(call.request)
    out = first.structured_content
    assert (out["lines"], out["inserted"], out["duplicates"]) == (5, 2, 1)
    assert out["unmapped"] == {"unknown client": 1, "no client property": 1}
    assert again.structured_content["inserted"] == 0
    assert again.structured_content["duplicates"] == 3
    assert progress[-1][:2] == (5, 5)
    with server.runtime.db.session() as s:
        rows = s.exec(select(CsUsageEvent).order_by(CsUsageEvent.external_id)).all()
    assert [(r.client_id, r.event, r.feature, r.user_ref, r.source) for r in rows] == [
        (cid, "viewed_report", "reports", "u-1", "mixpanel"),
        (cid, "session_start", None, "u-1", "mixpanel"),
    ]


async def test_nested_group_property_maps_the_client(mp):
    server = mp["server"]
    with respx.mock() as mock:
        mock.get(EXPORT).mock(return_value=ndjson(line("login", "g1", **{"$groups": {"company": "acme-co"}})))
        result = await run(
            server, from_date="2026-05-01", to_date="2026-05-01", client_property="$groups.company"
        )
    assert result.structured_content["inserted"] == 1


async def test_malformed_line_stores_nothing(mp):
    server = mp["server"]
    with respx.mock() as mock:
        mock.get(EXPORT).mock(return_value=ndjson(line("login", "a", client_id=mp["client"]), "{not json"))
        result = await run(server, from_date="2026-05-01", to_date="2026-05-02")
    err = error_of(result)
    assert err["code"] == "integration_unavailable"
    assert "line 2" in err["message"]
    assert usage_rows(server) == 0


@pytest.mark.parametrize(("status", "code"), [(401, "integration_auth"), (500, "integration_unavailable")])
async def test_vendor_errors_store_nothing(mp, status, code):
    server = mp["server"]
    with respx.mock() as mock:
        mock.get(EXPORT).mock(return_value=httpx.Response(status, json={"error": "x"}))
        result = await run(server, from_date="2026-05-01", to_date="2026-05-02")
    assert error_of(result)["code"] == code
    assert SECRET not in result.content[0].text
    assert usage_rows(server) == 0


async def test_rate_limit_is_waited_out(mp):
    server = mp["server"]
    with respx.mock() as mock:
        mock.get(EXPORT).mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "3"}),
                ndjson(line("login", "r", client_id=mp["client"])),
            ]
        )
        result = await run(server, from_date="2026-05-01", to_date="2026-05-02")
    assert result.structured_content["inserted"] == 1
    assert 3.0 in mp["clock"].sleeps


async def test_bad_ranges_and_missing_credentials(cs_server):
    reversed_range = await run(cs_server, from_date="2026-05-02", to_date="2026-05-01")
    assert error_of(reversed_range)["field"] == "to_date"
    too_long = await run(cs_server, from_date="2026-01-01", to_date="2026-05-01")
    assert error_of(too_long)["field"] == "to_date"
    unconfigured = await run(cs_server, from_date="2026-05-01", to_date="2026-05-01")
    err = error_of(unconfigured)
    assert err["code"] == "configuration_error"
    assert "revops vault set mixpanel service_account_username=" in err["hint"]


async def test_profiles_get_client_data(mp):
    server = mp["server"]
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(ENGAGE).respond(200, json={"status": 1, "error": None})
        result = await run(server, action="push_profiles")
    assert result.structured_content["profiles_updated"] == 1
    data = validate_engage(route.calls[0].request)
    assert data[0]["$distinct_id"] == "ann@acme.test"
    assert data[0]["$token"] == "tok123"
    assert data[0]["$set"]["client_name"] == "Acme"
    assert data[0]["$set"]["renewal_date"] is None  # missing data is sent as missing, not invented


async def test_profiles_refused_by_mixpanel_is_an_error(mp):
    server = mp["server"]
    with respx.mock() as mock:
        mock.post(ENGAGE).respond(200, json={"status": 0, "error": "bad token"})
        result = await run(server, action="push_profiles")
    err = error_of(result)
    assert err["code"] == "integration_unavailable"
    assert "bad token" in err["message"]


async def test_engage_schema_rejects_a_malformed_update():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"$distinct_id": "x", "$set": {}}], ENGAGE_DATA)


async def test_the_importer_is_a_health_tool(make_settings):
    from revops_cs.server import create_server

    server = create_server(make_settings(toolsets=["health"]))
    try:
        async with connect(server) as client:
            names = {t.name for t in (await client.list_tools()).tools}
    finally:
        server.runtime.db.dispose()
    assert "import_mixpanel_usage" in names
    assert "send_personalized_email" not in names  # the communication toolset is not listed


async def test_import_needs_both_dates_and_bounded_client_ids(cs_server):
    async with connect(cs_server) as client:
        no_start = await call_error(client, "import_mixpanel_usage", to_date="2026-05-01")
        no_end = await call_error(client, "import_mixpanel_usage", from_date="2026-05-01")
        future = await call_error(
            client, "import_mixpanel_usage", from_date="2026-05-01", to_date="2999-01-01"
        )
        too_big = await call_error(
            client, "import_mixpanel_usage", action="push_profiles", client_ids=[2**31]
        )
    assert (no_start["code"], no_start["field"]) == ("validation_error", "from_date")
    assert (no_end["code"], no_end["field"]) == ("validation_error", "to_date")
    assert (future["code"], future["field"]) == ("validation_error", "to_date")
    assert too_big["code"] == "validation_error"
