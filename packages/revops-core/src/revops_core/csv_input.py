"""One CSV reader for every tool that accepts a CSV text: bounded fields, exact lines, short echoes.

Python's `csv` module raises `_csv.Error` on a field above its limit (131 072 characters), which a
tool would report as an `internal_error`; a row with more values than the header lands under a
`None` key that callers silently drop; and an error message that quotes the header quotes whatever
the caller sent (a 120 KB "header"). `read_csv` instead returns the header, the rows with their
line numbers, and the rows it refused, each with the line and column at fault (extra values, a
value over `MAX_FIELD_CHARS`, a control character or bidi override in a value):

    table = read_csv(csv_text, field="csv_text")      # ValidationFailed only for a bad header
    for problem in table.problems: ...                 # extra values, oversize fields
    for row in table.rows: Model.model_validate(row.values, context=TEXT_INPUT)

Line numbers are those of the file (header = line 1), so a quoted value spanning lines does not
shift the numbers of the rows after it. Nothing the caller sent is echoed beyond `ECHO_CHARS`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from revops_core.errors import ValidationFailed
from revops_core.params import TEXT_INPUT, text_problem

__all__ = [
    "ECHO_CHARS",
    "MAX_FIELD_CHARS",
    "TEXT_INPUT",
    "CsvProblem",
    "CsvRow",
    "CsvTable",
    "echo",
    "read_csv",
]

MAX_FIELD_CHARS = 10_000
"""Longest value a cell may hold (no column of any import comes near it)."""
MAX_HEADER_CHARS = 200
"""Longest column name."""
ECHO_CHARS = 200
"""Most characters of caller-sent text an error message repeats."""

# The module-wide limit only guards the parser itself; fields are checked against `max_field`
# below, so an oversize one is the row's error instead of `_csv.Error`. No tool accepts more than
# 20 M characters of CSV, so no field can exceed this (raising it never narrows another caller).
_PARSER_LIMIT = 64 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), _PARSER_LIMIT))


def echo(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` as a message may repeat it: at most `limit` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


@dataclass(frozen=True)
class CsvRow:
    line: int
    """Line of the file the record starts on (header = 1)."""
    values: dict[str, str]
    """Column → value; columns a short row leaves out are absent."""


@dataclass(frozen=True)
class CsvProblem:
    line: int
    column: str
    """The column at fault, or "row" for the record as a whole."""
    message: str


@dataclass
class CsvTable:
    header: list[str]
    rows: list[CsvRow] = field(default_factory=list)
    problems: list[CsvProblem] = field(default_factory=list)

    def raise_first_problem(self, field: str) -> None:
        """For an all-or-nothing import: the first refused row as a `validation_error`."""
        if self.problems:
            first = self.problems[0]
            where = f"line {first.line}" + ("" if first.column == "row" else f", column '{first.column}'")
            raise ValidationFailed(
                f"CSV {where}: {first.message}",
                field=field,
                hint="Correct that line (quote values holding commas or line breaks); nothing was stored.",
            )


def _header(cells: list[str] | None, *, field: str) -> list[str]:
    if not cells:
        raise ValidationFailed(
            "The CSV is empty: no header row.", field=field, hint="Start with a header row."
        )
    names = [c.strip() for c in cells]
    names[0] = names[0].removeprefix("\ufeff")  # a spreadsheet's UTF-8 byte-order mark
    for position, name in enumerate(names, start=1):
        if not name:
            problem = "has no name"
        elif len(name) > MAX_HEADER_CHARS:
            problem = f"has a name of {len(name)} characters (at most {MAX_HEADER_CHARS})"
        elif found := text_problem(name, multiline=False):
            problem = f"name {found}"
        elif name in names[: position - 1]:
            problem = f"repeats the column '{echo(name)}'"
        else:
            continue
        raise ValidationFailed(
            f"Bad CSV header: column {position} {problem}.",
            field=field,
            hint="The first line names each column once; nothing was imported.",
        )
    return names


def _cell_problem(header: list[str], cells: list[str], max_field: int) -> tuple[str, str] | None:
    """(column, what is wrong) for the first bad value of a row, or None."""
    for name, value in zip(header, cells, strict=False):
        if len(value) > max_field:
            return name, f"holds {len(value)} characters; at most {max_field}"
        # Quoted values may hold tabs and line breaks; a model may still ask for one line.
        if found := text_problem(value, multiline=True):
            return name, found
    return None


def read_csv(text: str, *, field: str = "csv_text", max_field: int = MAX_FIELD_CHARS) -> CsvTable:
    """Parse `text` (header first). A bad header is a `ValidationFailed` on `field`; a row with
    more values than the header has columns, a value over `max_field` characters or one holding a
    control character or bidi override is a problem of that row (the row is left out); blank lines
    are skipped."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = _header(next(reader, None), field=field)
        table = CsvTable(header)
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells or cells == [""]:
                continue
            if len(cells) > len(header):
                table.problems.append(
                    CsvProblem(
                        line,
                        "row",
                        f"has {len(cells)} values but the header has {len(header)} columns "
                        "(quote values that hold commas)",
                    )
                )
                continue
            problem = _cell_problem(header, cells, max_field)
            if problem is not None:
                table.problems.append(CsvProblem(line, *problem))
                continue
            table.rows.append(CsvRow(line, dict(zip(header, cells, strict=False))))
    except csv.Error as exc:  # e.g. a field past the parser limit: still the caller's mistake
        raise ValidationFailed(
            f"The CSV cannot be read at line {reader.line_num}: {echo(str(exc))}.",
            field=field,
            hint="Check the quoting on that line; nothing was imported.",
        ) from None
    return table
