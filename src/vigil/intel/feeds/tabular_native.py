"""Big CSV block lists read by DuckDB itself (``NativeCsv``), the Python reader doing only what differs.

A million-row feed of IPv4 addresses or hashes costs the Python reader about two seconds in its row loop
alone. Here DuckDB reads the file, splits the plain rows into cells, checks that each value is already in
its canonical form, reads dates of the common ``YYYY-MM-DD HH:MM:SS`` form and stages every such row in
SQL, without a Python object per row. What decides the rest of a row's staging line (type, confidence,
tags, family: ``Stager.tail``) is computed by the Python item path once per distinct cells, on the first
row that has them, exactly as ``tabular_staging.row_stager`` does.

Exactness first: every line the SQL is not sure of goes to the Python reader (``CsvParser.records``) with
its line number: the header and the first line, comment-like and quoted lines that are not plain quoted
cells, values that need refanging or fail, dates of any other form, rows whose cells' first row was
refused. Those rows get exactly the Python reader's staging lines and refusals, in line order. A file
this reader cannot take at all (not UTF-8, a NUL byte, a quoted line break, a lone carriage return, not
a regular file, too small to matter or too big to hold) is read by the Python reader from the start:
``stage_rows`` then returns None having staged and refused nothing.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import duckdb

from vigil.intel.feeds.tabular import _HASH_LENGTHS, _OCTET, CsvParser, _CsvPlan
from vigil.intel.feeds.tabular_options import NULLS, CsvOptions
from vigil.intel.feeds.tabular_staging import row_stager, shape_columns, staged_cell_time
from vigil.intel.indicators import IndicatorType, ItemError, ParsedIndicator
from vigil.intel.staging import STAGE_CSV, STAGE_FIELDS, Stager

T = IndicatorType
MIN_BYTES = 4 * 1024 * 1024  # smaller files: the Python reader takes as long as setting this one up
MAX_BYTES = 256 * 1024 * 1024  # bigger ones (about 6 million rows) are streamed by the Python reader
_IPV4 = r"\.".join([_OCTET] * 4)  # the Python reader's plain address, which RE2 reads alike
_HEX_LENGTH = {kind: length for length, kind in _HASH_LENGTHS.items()}
_SPACE = " \t\x0b\x0c\r"  # what str.strip() removes and SQL is told to (a wider strip goes to Python)
_SPACE_RE = r" \t\r\x0b\x0c"  # the same, as a regular expression class
_FIELDS = ", ".join(f"{name} {kind}" for name, kind in STAGE_FIELDS)
_HEAD_WITHIN = 10_000  # the first row or header is looked for in this many lines
# A date DuckDB reads as Python's fromisoformat does (zone-less: UTC); any other form goes to Python.
_PLAIN_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"


def canonical_sql(kind: IndicatorType, cell: str) -> str | None:
    """SQL giving the canonical value of a cell when it plainly is one already, blanks around it and (for an
    address) a port after it aside as ``value_normaliser`` does; '' when it is not (the row goes to Python).
    None for a type this reader leaves to Python."""
    blank = f"[{_SPACE_RE}]*"
    if kind is T.IPV4:
        return f"regexp_extract({cell}, '^{blank}({_IPV4})(?::[0-9]{{1,5}})?{blank}$', 1)"
    if kind in _HEX_LENGTH:
        return f"lower(regexp_extract({cell}, '^{blank}([0-9a-fA-F]{{{_HEX_LENGTH[kind]}}}){blank}$', 1))"
    return None


def file_path(stream: IO[bytes]) -> tuple[str, int] | None:
    """A path DuckDB can open for the stream's file, and its size; None when it is not a regular file read
    from its start (a pipe, a request body in memory)."""
    try:
        descriptor = stream.fileno()
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or stream.tell() != 0:
            return None
    except (AttributeError, OSError, ValueError):  # io.BytesIO has no descriptor
        return None
    by_descriptor = f"/proc/self/fd/{descriptor}"  # also an unnamed temporary file (a feed's download)
    return (by_descriptor, status.st_size) if Path(by_descriptor).exists() else None


class NativeCsv:
    """``staging.NativeRows`` for a CSV feed of one fixed type the SQL can check (IPv4, MD5, SHA-1, SHA-256)."""

    def __init__(self, path: str, options: CsvOptions, stager: Stager, *,
                 finish: Callable[[ParsedIndicator], ParsedIndicator], refuse: Callable[[ItemError], None]) -> None:
        self.path = path
        self.options = options
        self.stager = stager
        self.finish = finish
        self.refuse = refuse

    @classmethod
    def of(cls, stream: IO[bytes], options: CsvOptions, stager: Stager, *,
           finish: Callable[[ParsedIndicator], ParsedIndicator], refuse: Callable[[ItemError], None],
           ) -> NativeCsv | None:
        """The native reader for this stream and these options, or None where the Python reader reads it."""
        kind = options.default_type
        if options.type_column is not None or kind is None or canonical_sql(kind, "v") is None:
            return None
        found = file_path(stream)
        if found is None or not MIN_BYTES <= found[1] <= MAX_BYTES:
            return None
        return cls(found[0], options, stager, finish=finish, refuse=refuse)

    # --- the steps --------------------------------------------------------------------------------------

    def stage_rows(self, db: duckdb.DuckDBPyConnection, folder: Path) -> str | None:
        relation = self._stage_rows(db, folder)
        if relation is None:
            self.release(db)  # the lines read before it turned out the Python reader's
        return relation

    def _stage_rows(self, db: duckdb.DuckDBPyConnection, folder: Path) -> str | None:
        if not self._lines(db):
            return None
        first = db.execute(f"""SELECT number, line FROM csv_lines
            WHERE number <= {_HEAD_WITHIN} AND {self._data(0)} AND trim(line, '{_SPACE}') <> ''
            ORDER BY number LIMIT 1""").fetchone()  # noqa: S608 - own fragments
        if first is None:
            return None  # a file that is (or starts with) thousands of comments: the Python reader reads it
        head = (int(first[0]), _text(first[1], int(first[0])))
        made, staged = self._python([head])
        list(staged)  # the first line read: the plan the Python reader makes of it is there
        if not made or made[0].fixed is None:
            return None
        plan = made[0]
        self._dated(db, plan, self._rows(db, plan, head[0]))
        self._native(db, head)
        db.execute(f"CREATE OR REPLACE TEMP TABLE csv_python ({_FIELDS})")
        path = folder / "python-rows.tsv"
        with path.open("w", encoding="utf-8") as out:  # streamed: all rows may be Python's (oddly quoted ones)
            _, staged = self._python(itertools.chain([head], self._left(db)), refuse=self.refuse)
            written = 0
            for _, line in staged:
                out.write(line + "\n")
                written += 1
        if written:
            db.execute(f"INSERT INTO csv_python SELECT * FROM read_csv(?, {STAGE_CSV})", [str(path)])  # noqa: S608
        path.unlink()
        return "(SELECT * FROM csv_native UNION ALL SELECT * FROM csv_python)"

    def release(self, db: duckdb.DuckDBPyConnection) -> None:
        db.execute("DROP VIEW IF EXISTS csv_native")
        for temporary in ("csv_python", "csv_tails", "csv_shapes", "csv_dated", "csv_times", "csv_cells",
                          "csv_rows", "csv_lines"):
            db.execute(f"DROP TABLE IF EXISTS {temporary}")

    def _lines(self, db: duckdb.DuckDBPyConnection) -> bool:
        """``csv_lines``: every line with its number; False when a line could be read otherwise by the Python
        reader (its line breaks) or the file is not UTF-8 text."""
        # Not UTF-8: no lines (the Python reader replaces bad bytes, then refuses their rows). An error would end
        # the store's transaction, so the text is decoded with try(), not read with read_text().
        db.execute("""CREATE OR REPLACE TEMP TABLE csv_lines AS
            SELECT generate_subscripts(l, 1) AS number, unnest(l) AS line
            FROM (SELECT string_split(try(decode(content)), chr(10)) AS l FROM read_blob(?))""", [self.path])
        # A quoted line break, a carriage return but at the very end (a line break to Python), or a NUL: no.
        lines, broken = db.execute("""SELECT count(*), count(*) FILTER (
                (contains(line, $quote) AND (strlen(line) - strlen(replace(line, $quote, ''))) % 2 = 1)
             OR (contains(line, chr(13)) AND (NOT ends_with(line, chr(13))
                                              OR strlen(line) - strlen(replace(line, chr(13), '')) > 1))
             OR contains(line, chr(0))) FROM csv_lines""", {"quote": self.options.quotechar}).fetchone() or (0, 0)
        return bool(lines) and not broken

    def _data(self, head: int) -> str:
        """SQL: the lines after the first that may be rows (not empty, not a comment; the Python reader also
        skips blank ones, which SQL leaves to it)."""
        comment = self.options.comment
        return f"number > {head} AND line <> ''" + (f" AND NOT starts_with(line, {_literal(comment)})"
                                                     if comment else "")

    def _rows(self, db: duckdb.DuckDBPyConnection, plan: _CsvPlan, head: int) -> str:
        """``csv_rows``: every data line after the first, with its value, date and shape cells where SQL splits
        its cells (no quote, or every cell quoted with nothing else in it). The value is the canonical one, ''
        (or NULL) where SQL is not sure of it. Returns the condition (SQL) of the rows SQL may stage. A row's
        last cell may end in the line's carriage return: the value's and dates' checks allow for it, and two
        rows alike in their shape cells are alike without it too."""
        delimiter, quote = self.options.delimiter, self.options.quotechar
        assert plan.fixed is not None
        unquoted = "rtrim(line, chr(13))"
        cells = (f"CASE WHEN NOT contains(line, {_literal(quote)}) THEN string_split(line, {_literal(delimiter)}) "
                 f"WHEN regexp_full_match({unquoted}, {_literal(_quoted_line(quote, delimiter))}) "
                 f"THEN string_split_regex({unquoted}[2:-2], "
                 f"{_literal(_re_quote(quote + delimiter) + ' *' + _re_quote(quote))}) END")
        shape = ", ".join(f"c[{position + 1}]" for position in shape_columns(plan))
        value = canonical_sql(plan.fixed[0], f"c[{plan.value + 1}]")
        header = db.execute(f"SELECT {canonical_sql(plan.fixed[0], '$cell')}",
                            {"cell": plan.header_value or ""}).fetchone()
        # No filter on what is computed here: DuckDB would compute it twice, once to filter (the next steps do).
        db.execute(f"""CREATE OR REPLACE TEMP TABLE csv_rows AS
            SELECT number, {value} AS value, {_cell(plan.first_seen)} AS first_cell,
                   {_cell(plan.last_seen)} AS last_cell, [{shape}]::VARCHAR[] AS shape
            FROM (SELECT number, {cells} AS c FROM csv_lines WHERE {self._data(head)})""")  # noqa: S608
        return "value <> ''" + (f" AND value <> {_literal(header[0])}" if header and header[0] and plan.names else "")

    def _dated(self, db: duckdb.DuckDBPyConnection, plan: _CsvPlan, plain: str) -> None:
        """``csv_dated``: the rows with their dates, ``staged`` where SQL stages them (a plain value, dates
        known). Each distinct date cell is read once: by SQL in the plain ``YYYY-MM-DD HH:MM:SS`` form, by
        Python's own rule otherwise; a row with a date that is none stays with Python (its refusal says why)."""
        nulls = ", ".join(_literal(word) for word in sorted(NULLS))
        trimmed = f"trim(cell, '{_SPACE}')"
        db.execute(f"""CREATE OR REPLACE TEMP TABLE csv_cells AS
            SELECT first_cell AS cell FROM csv_rows WHERE {plain}
            UNION SELECT last_cell FROM csv_rows WHERE {plain}""")  # noqa: S608
        db.execute(f"""CREATE OR REPLACE TEMP TABLE csv_times AS
            SELECT cell, CASE WHEN lower({trimmed}) IN ({nulls}) THEN NULL
                              ELSE timezone('UTC', TRY_CAST({trimmed} AS TIMESTAMP)) END AS seen, true AS known
            FROM csv_cells WHERE cell IS NOT NULL AND (lower({trimmed}) IN ({nulls})
                  OR (regexp_full_match({trimmed}, '{_PLAIN_TIME}') AND TRY_CAST({trimmed} AS TIMESTAMP) IS NOT NULL))
            """)  # noqa: S608
        odd = [cell for (cell,) in db.execute("""SELECT cell FROM csv_cells
                                                 WHERE cell IS NOT NULL AND cell NOT IN (SELECT cell FROM csv_times)""")
               .fetchall()]
        if odd:  # Python's own rule, once per distinct cell
            db.executemany("INSERT INTO csv_times VALUES (?, nullif(?, '')::TIMESTAMPTZ, ? IS NOT NULL)",
                           [(cell, staged, staged) for cell in odd for staged in (staged_cell_time(cell),)])
        joins, known = [], []
        for column, position in (("first", plan.first_seen), ("last", plan.last_seen)):
            if position is None:
                continue
            joins.append(f"LEFT JOIN csv_times {column} ON {column}.cell = r.{column}_cell")
            known.append(f"(r.{column}_cell IS NULL OR coalesce({column}.known, false))")
        seen = [f"{column}.seen" if position is not None else "NULL::TIMESTAMPTZ"
                for column, position in (("first", plan.first_seen), ("last", plan.last_seen))]
        db.execute(f"""CREATE OR REPLACE TEMP TABLE csv_dated AS
            SELECT r.number, r.value, {seen[0]} AS first_seen, {seen[1]} AS last_seen, r.shape,
                   coalesce({' AND '.join([plain, *known])}, false) AS staged
            FROM csv_rows r {' '.join(joins)}""")  # noqa: S608

    def _native(self, db: duckdb.DuckDBPyConnection, head: tuple[int, str]) -> None:
        """``csv_native``: the dated rows, each with the tail the Python item path gives the first row of its
        shape cells; the rows of a shape whose first row it refuses are left to Python, every one."""
        db.execute("""CREATE OR REPLACE TEMP TABLE csv_shapes AS
            SELECT row_number() OVER (ORDER BY first) AS shape_id, shape, first
            FROM (SELECT shape, min(number) AS first FROM csv_dated WHERE staged GROUP BY shape)""")
        firsts = db.execute("""SELECT s.shape_id, l.number, l.line FROM csv_shapes s
                               JOIN csv_lines l ON l.number = s.first ORDER BY l.number""").fetchall()
        by_number = {int(number): int(shape_id) for shape_id, number, _ in firsts}
        _, staged = self._python([head, *((int(number), _text(line, int(number))) for _, number, line in firsts)])
        tails = [(by_number[number], *_tail_fields(line)) for number, line in staged if number in by_number]
        db.execute("""CREATE OR REPLACE TEMP TABLE csv_tails (shape_id BIGINT, type VARCHAR, confidence INTEGER,
                      tags VARCHAR, policy INTEGER, extra VARCHAR)""")
        if tails:
            db.executemany("INSERT INTO csv_tails VALUES (?, ?, ?, ?, ?, ?)", tails)
        db.execute("""CREATE OR REPLACE TEMP VIEW csv_native AS
            SELECT d.number AS pos, d.value, d.first_seen, d.last_seen, t.type, t.confidence, t.tags, t.policy,
                   t.extra
            FROM csv_dated d JOIN csv_shapes s ON s.shape IS NOT DISTINCT FROM d.shape
            JOIN csv_tails t ON t.shape_id = s.shape_id WHERE d.staged""")

    @staticmethod
    def _left(db: duckdb.DuckDBPyConnection) -> Iterator[tuple[int, str]]:
        """The lines after the first that the Python reader reads, in order: all that SQL does not stage."""
        cursor = db.execute("""SELECT l.number, l.line FROM csv_lines l JOIN (
                SELECT number FROM csv_dated WHERE NOT staged
                UNION ALL
                SELECT d.number FROM csv_dated d JOIN csv_shapes s ON s.shape IS NOT DISTINCT FROM d.shape
                WHERE d.staged AND s.shape_id NOT IN (SELECT shape_id FROM csv_tails)) USING (number)
            ORDER BY l.number""")
        while rows := cursor.fetchmany(10_000):
            for number, line in rows:
                yield int(number), _text(line, int(number))

    def _python(self, lines: Iterable[tuple[int, str]], refuse: Callable[[ItemError], None] | None = None
                ) -> tuple[list[_CsvPlan], Iterator[tuple[int, str]]]:
        """The Python reader over these lines (the first being the file's first line): the plan it made (there
        once the first line is read) and its staging lines with their line numbers, as they are read; refusals
        go to ``refuse`` (none: dropped, as when only asking)."""
        made: list[_CsvPlan] = []

        def converter(plan: _CsvPlan) -> Callable[[list[str], int], tuple[int, str] | None]:
            made.append(plan)
            convert = row_stager(plan, self.stager, finish=self.finish, refuse=refuse or _drop)

            def numbered(cells: list[str], number: int) -> tuple[int, str] | None:
                line = convert(cells, number)
                return None if line is None else (number, line)
            return numbered

        return made, CsvParser.records(iter(lines), self.options, converter)


def _drop(error: ItemError) -> None:
    del error


def _text(line: Any, number: int) -> str:
    """A line as the Python reader's text lines give it: with its line break, and the first without a BOM."""
    text = str(line)
    if number == 1:
        text = text.removeprefix("\ufeff")
    return text + "\n"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _re_quote(text: str) -> str:
    return "".join("\\" + char if not char.isalnum() else char for char in text)


def _quoted_line(quote: str, delimiter: str) -> str:
    """A line of quoted cells only, none holding the quote: what the csv module reads as their insides."""
    q, d = _re_quote(quote), _re_quote(delimiter)
    cell = f"{q}[^{q}]*{q}"
    return f"{cell}(?:{d} *{cell})*"


def _cell(position: int | None) -> str:
    return "NULL::VARCHAR" if position is None else f"c[{position + 1}]"


def _tail_fields(line: str) -> tuple[str, int | None, str | None, int, str | None]:
    """A staging line's tail as the staging file's columns: type, confidence, tags, policy, extra."""
    kind, confidence, tags, policy, extra = line.split("\t", 4)[4].split("\t", 4)
    return kind, int(confidence) if confidence else None, tags or None, int(policy), extra or None
