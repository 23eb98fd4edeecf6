"""CSV and argument hygiene of the CS tools, through the protocol (issue 10, "input hygiene").

Before: a 1 MB CSV cell crashed every CSV import with `internal_error` (`_csv.Error: field larger
than field limit`); a bad header was echoed whole in the error (120 KB); a row with more values
than the header was imported with the surplus silently dropped; `client_id=true` read client 1;
names took control characters and right-to-left overrides. All three CSV parsers (client import,
billing, churn training data) now read through `revops_core.csv_input`.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_cs.models.clients import CsClient
from revops_cs.models.retention import CsBillingEvent, CsChurnTrainingRow

pytestmark = pytest.mark.anyio

MEGABYTE = "x" * 1_000_000
HUGE_HEADER = "h" * 120_000


async def _client(client, name: str) -> int:
    return int((await call_ok(client, "register_client", name=name, tier="smb"))["client_id"])


# --------------------------------------------------------------------------- import_clients_csv


async def test_client_import_reports_an_oversize_cell_and_extra_values_by_line(cs_server) -> None:
    text = (
        "name,tier,domain\n"
        "Alpha,smb,alpha.example\n"
        f"{MEGABYTE},smb,big.example\n"
        "Beta,smb,beta.example,surplus\n"
        '"Gamma, Ltd",smb,gamma.example\n'
        "Bell\x07,smb,bell.example\n"
    )
    async with connect(cs_server) as client:
        out = await call_ok(client, "import_clients_csv", csv_text=text)
    assert (out["rows"], out["imported"], out["valid"]) == (5, 2, 2)
    assert [(e["row"], e["field"]) for e in out["errors"]] == [(3, "name"), (4, "row"), (6, "name")]
    assert out["errors"][0]["message"] == "holds 1000000 characters; at most 10000"
    assert out["errors"][1]["message"].startswith("has 4 values but the header has 3 columns")
    assert "control character (U+0007) at character 5" in out["errors"][2]["message"]
    with cs_server.runtime.db.session() as s:
        assert sorted(c.name for c in s.exec(select(CsClient))) == ["Alpha", "Gamma, Ltd"]


async def test_client_import_header_errors_do_not_echo_the_header(cs_server) -> None:
    async with connect(cs_server) as client:
        huge = await call_error(client, "import_clients_csv", csv_text=f"name,tier,{HUGE_HEADER}\nA,smb,x\n")
        unknown = await call_error(
            client, "import_clients_csv", csv_text="name,tier," + "y" * 150 + "\nA,smb,1\n"
        )
    assert (huge["code"], huge["field"]) == ("validation_error", "csv_text")
    assert huge["message"] == "Bad CSV header: column 3 has a name of 120000 characters (at most 200)."
    assert (unknown["code"], unknown["field"]) == ("validation_error", "csv_text")
    assert unknown["message"] == f"Bad CSV header: unknown columns {'y' * 150}."
    assert count_rows(cs_server.runtime.db, CsClient) == 0


async def test_imported_seat_counts_still_read_as_numbers(cs_server) -> None:
    async with connect(cs_server) as client:
        out = await call_ok(client, "import_clients_csv", csv_text="name,tier,seats_purchased\nA,smb,25\n")
    assert (out["imported"], out["errors"]) == (1, [])
    with cs_server.runtime.db.session() as s:
        assert [c.seats_purchased for c in s.exec(select(CsClient))] == [25]


# --------------------------------------------------------------------------- record_billing


async def test_billing_csv_reports_an_oversize_cell_and_extra_values_by_line(cs_server) -> None:
    async with connect(cs_server) as client:
        cid = await _client(client, "Payer")
        text = (
            "client_id,kind,amount_minor,currency,occurred_at\n"
            f"{cid},payment_succeeded,9900,USD,2026-02-01T10:00:00Z\n"
            f"{cid},payment_succeeded,9900,USD,2026-02-02T10:00:00Z,{cid}\n"
            f"{cid},payment_succeeded,9900,{MEGABYTE},2026-02-03T10:00:00Z\n"
            f"{cid},refund,100,USD,2026-02-04T10:00:00Z\n"
        )
        out = await call_ok(client, "record_billing", csv=text)
    assert (out["rows"], out["recorded"]) == (4, 2)
    assert [(e["row"], e["field"]) for e in out["errors"]] == [(3, "row"), (4, "currency")]
    assert out["errors"][1]["message"] == "holds 1000000 characters; at most 10000"
    assert count_rows(cs_server.runtime.db, CsBillingEvent) == 2


async def test_billing_csv_with_a_huge_header_is_a_short_validation_error(cs_server) -> None:
    async with connect(cs_server) as client:
        err = await call_error(client, "record_billing", csv=f"{HUGE_HEADER}\n1\n")
    assert (err["code"], err["field"]) == ("validation_error", "csv")
    assert err["message"] == "Bad CSV header: column 1 has a name of 120000 characters (at most 200)."


async def test_billing_events_refuse_a_boolean_client_id(cs_server) -> None:
    async with connect(cs_server) as client:
        await _client(client, "Client one")
        err = await call_error(
            client,
            "record_billing",
            events=[
                {
                    "client_id": True,
                    "kind": "refund",
                    "amount_minor": 1,
                    "occurred_at": "2026-02-01T10:00:00Z",
                }
            ],
        )
    assert (err["code"], err["field"]) == ("validation_error", "events.0.client_id")
    assert count_rows(cs_server.runtime.db, CsBillingEvent) == 0


# --------------------------------------------------------------------------- manage_churn_model import


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"account_ref,churned,tenure\na,1,3\nb,0,{MEGABYTE}\n",
            "CSV line 3, column 'tenure': holds 1000000",
        ),
        (
            "account_ref,churned,tenure\na,1,3\nb,0,4,5\n",
            "CSV line 3: has 4 values but the header has 3 columns",
        ),
        (
            "account_ref,churned,segment\na,1,smb\nb,0,\u202esmb\n",
            "CSV line 3, column 'segment': contains a bidirectional override (U+202E) at character 1",
        ),
        (
            f"{HUGE_HEADER},churned\na,1\n",
            "Bad CSV header: column 1 has a name of 120000 characters (at most 200).",
        ),
    ],
)
async def test_churn_import_refuses_oversize_cells_extra_values_and_huge_headers(
    cs_server, text, message
) -> None:
    async with connect(cs_server) as client:
        err = await call_error(client, "manage_churn_model", action="import", dataset="d", csv_text=text)
    assert (err["code"], err["field"]) == ("validation_error", "csv_text")
    assert err["message"].startswith(message)
    assert len(err["message"]) < 300
    assert count_rows(cs_server.runtime.db, CsChurnTrainingRow) == 0


async def test_churn_import_missing_column_message_is_short(cs_server) -> None:
    names = [f"{'f' * 190}{i}" for i in range(12)]
    header = ",".join(names)
    async with connect(cs_server) as client:
        err = await call_error(
            client,
            "manage_churn_model",
            action="import",
            dataset="d",
            csv_text=f"{header}\n" + "1," * 11 + "1\n",
        )
    assert (err["code"], err["field"]) == ("validation_error", "id_column")
    assert err["message"].startswith(f"Column 'account_ref' is not in the CSV header ({'f' * 190}0, ")
    listed = ", ".join(names)
    assert f"… ({len(listed)} characters))." in err["message"]
    assert len(err["message"]) < 300


# --------------------------------------------------------------------------- arguments


async def test_a_boolean_client_id_is_not_client_one(cs_server) -> None:
    async with connect(cs_server) as client:
        first = await _client(client, "Client one")
        err = await call_error(client, "get_client_overview", client_id=True)
        text = await call_error(client, "get_client_overview", client_id=str(first))
    assert first == 1  # so `true` read as 1 would have found it
    assert (err["code"], err["field"]) == ("validation_error", "client_id")
    assert "must be a whole number, not true/false" in err["message"]
    assert (text["code"], text["field"]) == ("validation_error", "client_id")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Acme\u202egnp.exe"),
        ("name", "Acme\x00"),
        ("owner", "Ana\nBo"),
        ("contact_email", "a\u202e@x.example"),
    ],
)
async def test_client_names_refuse_control_characters_and_bidi_overrides(cs_server, field, value) -> None:
    arguments = {"name": "Acme", "tier": "smb", field: value}
    async with connect(cs_server) as client:
        err = await call_error(client, "register_client", **arguments)
    assert (err["code"], err["field"]) == ("validation_error", field)
    assert count_rows(cs_server.runtime.db, CsClient) == 0
