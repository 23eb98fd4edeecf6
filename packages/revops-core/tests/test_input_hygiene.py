"""Input hygiene in the core vocabulary, the CSV reader, the logs and `revops vault set`.

Each part failed before its fix: `client_id=true` reached client 1 and `"7"` was 7; names took
control characters and right-to-left overrides; a 1 MB CSV cell raised `_csv.Error`, extra values
vanished and a bad header was echoed whole; log lines carried full e-mail addresses; `vault set`
stored misspelt fields and took secrets on the command line without a word.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from revops_core.csv_input import read_csv
from revops_core.errors import Conflict, ValidationFailed
from revops_core.logs import configure_logging, get_logger, redact_pii
from revops_core.params import (
    MAX_COUNT,
    MAX_ID,
    MAX_MINOR,
    MAX_PAGE,
    TEXT_INPUT,
    Count,
    Cursor,
    Id,
    IdValue,
    Limit,
    MinorUnits,
    Text,
)
from revops_core.server import Call, Toolset, build_server
from revops_core.settings import Settings
from revops_core.testing import connect, error_of
from revops_core.testing import run_cli as _cli

pytestmark = pytest.mark.anyio


class Echo(BaseModel):
    arguments: dict[str, Any] = Field(description="What the tool received.")


def _toolset() -> Toolset:
    ts = Toolset("hygiene", "input hygiene probes")

    @ts.tool(tier="read")
    def probe(
        call: Call,
        client_id: Annotated[int, Id("client")],
        seats: Annotated[int, Count("Seats.")] = 0,
        ids: Annotated[list[IdValue] | None, Field(description="Ids.")] = None,
        limit: Limit = 50,
        amount_minor: MinorUnits = 0,
        name: Annotated[str | None, Text("Name.")] = None,
        body: Annotated[str | None, Text("Body.", max_length=5000)] = None,
        cursor: Cursor = None,
    ) -> Echo:
        """Echo the arguments."""
        return Echo(arguments=dict(call.arguments))

    @ts.tool(tier="read")
    def plain(
        call: Call,
        client_id: Annotated[int, Field(ge=1, le=MAX_ID, description="Client id.")],
        seats: Annotated[int, Field(ge=0, le=MAX_COUNT, description="Seats.")] = 0,
        ids: Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None, Field(description="Ids.")] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
        amount_minor: Annotated[
            int,
            Field(ge=0, le=MAX_MINOR, description="Amount in minor units (cents for USD), never negative."),
        ] = 0,
        name: Annotated[str | None, Field(min_length=1, max_length=200, description="Name.")] = None,
        body: Annotated[str | None, Field(min_length=1, max_length=5000, description="Body.")] = None,
        cursor: Annotated[
            str | None, Field(max_length=500, description="next_cursor of the previous page.")
        ] = None,
    ) -> Echo:
        """Echo the arguments."""
        return Echo(arguments=dict(call.arguments))

    @ts.tool(tier="write", idempotent=False)
    def clash(call: Call) -> Echo:
        """Fail as a duplicate contact does."""
        raise Conflict("A contact with e-mail jane.doe@example.com already exists.", field="contact_email")

    return ts


async def _calls(settings: Settings, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    server = build_server("t", [_toolset()], settings=settings)
    try:
        async with connect(server) as client:
            return [await client.call_tool(name, args) for name, args in calls]
    finally:
        server.runtime.db.dispose()


# --------------------------------------------------------------------------- whole numbers


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"client_id": True}, "client_id"),
        ({"client_id": False}, "client_id"),
        ({"client_id": "7"}, "client_id"),
        ({"client_id": 1, "seats": True}, "seats"),
        ({"client_id": 1, "ids": [2, True]}, "ids.1"),
        ({"client_id": 1, "limit": True}, "limit"),
        ({"client_id": 1, "amount_minor": "100"}, "amount_minor"),
    ],
)
async def test_a_boolean_or_a_string_is_not_a_number(settings, arguments, field) -> None:
    (result,) = await _calls(settings, ("probe", arguments))
    err = error_of(result)
    assert (err["code"], err["field"]) == ("validation_error", field)
    assert f"{field}: Value error, must be" in err["message"]


async def test_whole_numbers_still_pass_and_the_published_schema_is_unchanged(settings) -> None:
    server = build_server("t", [_toolset()], settings=settings)
    try:
        async with connect(server) as client:
            ok = await client.call_tool("probe", {"client_id": 7, "seats": 3.0, "ids": [1, 2], "limit": 5})
            tools = {t.name: t.input_schema for t in (await client.list_tools()).tools}
    finally:
        server.runtime.db.dispose()
    assert ok.structured_content["arguments"] == {
        "client_id": 7,
        "seats": 3,  # 3.0 is an integer in JSON Schema, as published
        "ids": [1, 2],
        "limit": 5,
        "amount_minor": 0,
        "name": None,
        "body": None,
        "cursor": None,
    }
    # The vocabulary's validators add nothing to the wire: same schema as bare Field(...) bounds.
    assert tools["probe"] == tools["plain"]


def test_text_input_context_reads_numbers_from_a_csv_cell() -> None:
    class Row(BaseModel):
        seats: Annotated[int, Count("Seats.")]

    assert Row.model_validate({"seats": "42"}, context=TEXT_INPUT).seats == 42
    with pytest.raises(ValueError, match="not a string"):
        Row.model_validate({"seats": "42"})
    with pytest.raises(ValueError, match="not true/false"):
        Row.model_validate({"seats": True}, context=TEXT_INPUT)


# --------------------------------------------------------------------------- plain text


@pytest.mark.parametrize(
    ("field", "value", "code_point", "position"),
    [
        ("name", "Acme\x07", "U+0007", 5),  # BEL
        ("name", "Ac\nme", "U+000A", 3),  # a line break in a single-line name
        ("name", "A\tcme", "U+0009", 2),
        ("name", "Acme\x85", "U+0085", 5),  # C1 NEXT LINE
        ("name", "Invoice\u202efdp.exe", "U+202E", 8),  # shows as "Invoiceexe.pdf"
        ("name", "\u2066Acme", "U+2066", 1),
        ("name", "Ac\u2028me", "U+2028", 3),
        ("body", "Hello\x00world", "U+0000", 6),
        ("body", "Hi\n\u202dthere", "U+202D", 4),
        ("cursor", "abc\u202e", "U+202E", 4),
    ],
)
async def test_control_characters_and_bidi_overrides_are_refused(
    settings, field, value, code_point, position
) -> None:
    (result,) = await _calls(settings, ("probe", {"client_id": 1, field: value}))
    err = error_of(result)
    assert (err["code"], err["field"]) == ("validation_error", field)
    assert f"({code_point}) at character {position}" in err["message"]
    assert value not in err["message"]  # the caller's text is not echoed


async def test_multi_line_text_keeps_tabs_and_line_breaks_and_names_keep_unicode(settings) -> None:
    body = "Dear Ana,\r\n\tthe renewal is due.\nשלום — ok"
    (result,) = await _calls(
        settings, ("probe", {"client_id": 1, "name": "Zoë Ødegård 株式会社", "body": body})
    )
    assert not result.is_error
    assert result.structured_content["arguments"]["body"] == body
    assert result.structured_content["arguments"]["name"] == "Zoë Ødegård 株式会社"


# --------------------------------------------------------------------------- CSV


def test_a_one_megabyte_field_is_that_row_s_problem_not_a_crash() -> None:
    text = "name,tier\nAlpha,smb\n" + "B" * 1_000_000 + ",smb\nGamma,gold\n"
    table = read_csv(text)
    assert [(r.line, r.values) for r in table.rows] == [
        (2, {"name": "Alpha", "tier": "smb"}),
        (4, {"name": "Gamma", "tier": "gold"}),
    ]
    assert [(p.line, p.column, p.message) for p in table.problems] == [
        (3, "name", "holds 1000000 characters; at most 10000")
    ]


def test_extra_values_are_refused_naming_the_line_and_short_rows_are_kept() -> None:
    table = read_csv('name,tier\n"A, Inc",smb\nB,smb,surplus\nC\n')
    assert [(r.line, r.values) for r in table.rows] == [
        (2, {"name": "A, Inc", "tier": "smb"}),
        (4, {"name": "C"}),
    ]
    assert [(p.line, p.column) for p in table.problems] == [(3, "row")]
    assert table.problems[0].message.startswith("has 3 values but the header has 2 columns")
    with pytest.raises(ValidationFailed) as caught:
        table.raise_first_problem("csv_text")
    assert caught.value.field == "csv_text"
    assert caught.value.message.startswith("CSV line 3: has 3 values")


def test_a_control_character_or_bidi_override_in_a_value_is_that_row_s_problem() -> None:
    table = read_csv('name,notes\nA,"tab\tand\nbreak"\nB\u202e,x\nC,bell\x07\n')
    assert [r.values["name"] for r in table.rows] == ["A"]
    assert [(p.line, p.column, p.message.split(" (")[0]) for p in table.problems] == [
        (4, "name", "contains a bidirectional override"),
        (5, "notes", "contains a control character"),
    ]
    assert "(U+0007) at character 5" in table.problems[1].message


def test_lines_are_the_file_s_lines_when_a_quoted_value_spans_several() -> None:
    table = read_csv('name,notes\nA,"one\ntwo\nthree"\n\nB,x\n')
    assert [(r.line, r.values["name"]) for r in table.rows] == [(2, "A"), (6, "B")]
    assert table.rows[0].values["notes"] == "one\ntwo\nthree"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "X" * 120_000 + "\nrow\n",
            "Bad CSV header: column 1 has a name of 120000 characters (at most 200).",
        ),
        ("name,tier,name\n", "Bad CSV header: column 3 repeats the column 'name'."),
        ("name,,tier\n", "Bad CSV header: column 2 has no name."),
        ("", "The CSV is empty: no header row."),
        (
            "name,ti\u202ber\n",
            "Bad CSV header: column 2 name contains a bidirectional override (U+202B) at character 3 "
            "(one line of plain text is expected).",
        ),
    ],
)
def test_a_bad_header_is_named_without_echoing_it(text: str, expected: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        read_csv(text, field="csv")
    assert (caught.value.message, caught.value.field) == (expected, "csv")


def test_a_spreadsheet_byte_order_mark_and_padded_names_are_not_part_of_the_header() -> None:
    assert read_csv("\ufeffname , tier\nA,smb\n").header == ["name", "tier"]


# --------------------------------------------------------------------------- logs


@pytest.fixture
def log_stream() -> Any:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        configure_logging("INFO")


async def test_log_lines_mask_e_mail_addresses_as_the_audit_log_does(settings, log_stream) -> None:
    import logging

    (result,) = await _calls(settings, ("clash", {}))
    get_logger("revops.test").info("sent", to="ana.silva@client.example", cc=["bo@x.example"])
    logging.getLogger("vendor.lib").warning("bounced for ana.silva@client.example")
    output = log_stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert error_of(result)["code"] == "conflict"
    assert "jane.doe@example.com" in error_of(result)["message"]  # the caller still sees its own data
    tool_error = next(e for e in lines if e["event"] == "tool_error")
    assert tool_error["message"] == redact_pii("A contact with e-mail jane.doe@example.com already exists.")
    assert tool_error["message"] == "A contact with e-mail j***@example.com already exists."
    sent = next(e for e in lines if e["event"] == "sent")
    assert (sent["to"], sent["cc"]) == ("a***@client.example", ["b***@x.example"])
    assert any(e["event"] == "bounced for a***@client.example" for e in lines)
    for address in ("jane.doe@example.com", "ana.silva@client.example", "bo@x.example"):
        assert address not in output


# --------------------------------------------------------------------------- revops vault set


@pytest.mark.parametrize(
    ("argv", "message", "hint"),
    [
        (
            ("zendesk", "subdomain=acme", "api_tokn=-"),
            "Zendesk has no field api_tokn.",
            "Zendesk fields: subdomain, email, api_token;",
        ),
        (
            ("zendsk", "api_token=-"),
            "No vendor is called 'zendsk'.",
            "Vendors: apollo, google, hubspot, intercom, mixpanel, salesforce, sendgrid, zendesk.",
        ),
    ],
)
def test_vault_set_refuses_a_field_or_vendor_no_client_reads(
    cli_env, db, capsys, monkeypatch, argv, message, hint
):
    from revops_core.vault import Vault

    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    code, _, err = _cli(capsys, "vault", "set", *argv)
    assert code == 2
    assert message in err
    assert hint in err
    assert Vault(db, cli_env).list() == []


def test_vault_set_warns_about_a_secret_given_inline_and_not_about_the_rest(cli_env, db, capsys, monkeypatch):
    from revops_core.vault import Vault

    code, _, err = _cli(
        capsys, "vault", "set", "zendesk", "subdomain=acme", "email=ops@acme.test", "api_token=tk-1"
    )
    assert code == 0
    assert "Warning: the value of api_token was given on the command line" in err
    assert "api_token=-" in err
    assert "tk-1" not in err
    assert Vault(db, cli_env).get("zendesk", "default")["api_token"].reveal() == "tk-1"

    monkeypatch.setattr(sys, "stdin", io.StringIO("tk-2\n"))
    code, _, err = _cli(capsys, "vault", "set", "zendesk", "subdomain=acme", "api_token=-")
    assert (code, err) == (0, "")
    assert Vault(db, cli_env).get("zendesk", "default")["api_token"].reveal() == "tk-2"


def test_vault_set_asks_for_a_dash_value_on_a_terminal_without_echo(cli_env, db, capsys, monkeypatch):
    import getpass

    from revops_core.vault import Vault

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    asked: list[str] = []
    monkeypatch.setattr(sys, "stdin", Terminal(""))
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or "tk-3")
    code, _, err = _cli(capsys, "vault", "set", "sendgrid", "api_key=-", "from_email=cs@acme.test")
    assert (code, err, asked) == (0, "", ["api_key: "])
    assert Vault(db, cli_env).get("sendgrid", "default")["api_key"].reveal() == "tk-3"
