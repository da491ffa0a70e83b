"""Bytes as customers send them -> a table of strings with the contract's column names.

Detects the encoding, delimiter and line ends, reads every cell as a string, maps the
header onto the contract (exact names first, then other CRMs' labels) and reports what
it could not read. Pure functions: no Dagster, no I/O.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from jf_pipeline.contract import Column, FileSpec, Kind
from jf_pipeline.core.problems import concat_problems, file_problem, row_problems
from jf_pipeline.core.values import (
    missing_to_null_series,
    parse_dates,
    parse_emails,
    parse_money,
    parse_urls,
)

DELIMITERS = (",", ";", "\t", "|")
_SNIFF_CHARS = 64 * 1024
_MAGIC = {
    b"\x1f\x8b": "gzip-compressed",
    b"PK\x03\x04": "a zip archive (an .xlsx workbook?)",
    b"%PDF": "a PDF document",
}


class UnreadableFile(ValueError):
    """The bytes are not text we can read; the message says why, for the customer."""


class FileTooLarge(ValueError):
    """The file is over one of the limits below; the message names the limit."""


DEFAULT_MAX_FILE_BYTES = 1024 * 1024 * 1024
"""The file-size limit unless the caller passes another (the shell's JF_MAX_FILE_MB)."""
MAX_COLUMNS = 1_000
MAX_CELL_CHARS = 100_000
"""Limits that keep one hostile file from exhausting a worker. A file over the size or
column limit is rejected as a whole; a row with an oversized cell is rejected alone."""


def _raise_csv_field_limit() -> None:
    """Python's csv module refuses fields over 131,072 characters by default, with an error
    that would fail the whole run. Our own limits decide instead (`MAX_CELL_CHARS` per
    cell, reported per row), so the csv module's own limit is lifted."""
    want = 2**63 - 1
    while csv.field_size_limit() < want:
        try:
            csv.field_size_limit(want)
        except OverflowError:  # a C long is 32 bits on some platforms
            want = 2**31 - 1


_raise_csv_field_limit()


@dataclass
class ReadTable:
    """What `read_table` made of one file."""

    frame: pl.DataFrame
    """`row_number` (1 = first data row) + every contract column as String + extra columns."""
    problems: pl.DataFrame
    rejected: bool
    """True when the file as a whole cannot be used (its previous data must stay)."""
    encoding: str | None = None
    delimiter: str | None = None
    header_mapping: dict[str, str] = field(default_factory=dict)
    """source header -> contract column, for every header that was matched."""
    ignored_columns: list[str] = field(default_factory=list)
    header_line: int = 1
    """The header's line in a spreadsheet (1 + the records above it, blank or a title):
    data row n is on line `header_line + n`."""
    missing_columns: list[str] = field(default_factory=list)
    """Required columns the header lacks. The file is then rejected, but `frame` still holds
    its rows with the columns that were found, so their problems are reported too."""


REPLACEMENT = "\ufffd"
"""What undecodable bytes and NUL bytes become in the text; their rows are reported."""
MAX_NUL_SHARE = 0.001
"""More NUL bytes than this share of the file: binary, or UTF-16 without a byte-order mark
(text in it is half NULs). Fewer are stray bytes, wherever they are: their rows are
`invalid_encoding` errors."""
_ASCII = bytes(range(128))
_DECIDE_CHUNK = 1 << 20


@dataclass
class Decoded:
    text: str
    encoding: str
    replaced: int = 0
    """Undecodable byte sequences and NUL bytes replaced by `REPLACEMENT`."""


def _mostly_utf8(data: bytes) -> Decoded | None:
    """Bytes that are not all valid UTF-8: UTF-8 with the bad sequences replaced when valid
    multi-byte characters are at least as many (one stray byte in an export), else None.

    A Windows-1252 file's accented letters are almost never valid UTF-8 sequences (`é` is a
    lone 0xE9), so a real one has next to no valid multi-byte characters; a UTF-8 file with
    a stray byte has many (every accented name) and few invalid ones."""
    # Counted in chunks: a large Windows-1252 file is never decoded whole twice.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    view, chars, replaced = memoryview(data), 0, 0
    for start in range(0, len(data), _DECIDE_CHUNK):
        part = decoder.decode(view[start : start + _DECIDE_CHUNK])
        chars, replaced = chars + len(part), replaced + part.count(REPLACEMENT)
    part = decoder.decode(b"", final=True)
    chars, replaced = chars + len(part), replaced + part.count(REPLACEMENT)
    invalid = replaced - data.count(REPLACEMENT.encode())  # a literal U+FFFD is valid
    ascii_bytes = len(data) - len(data.translate(None, _ASCII))
    valid_multibyte = chars - ascii_bytes - invalid
    if valid_multibyte >= invalid:  # > 0: strict decoding failed, so invalid > 0
        return Decoded(data.decode("utf-8", errors="replace"), "utf-8", invalid)
    return None


def decode(data: bytes) -> Decoded:
    """UTF-8 (± BOM, a few bad bytes replaced), UTF-16 with BOM, else Windows-1252.

    NUL bytes: many mean binary or BOM-less UTF-16 (`UnreadableFile`), a few are replaced
    like undecodable bytes, wherever they are in the file."""
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise UnreadableFile(f"the file is {what}, not a CSV text file")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            decoded = Decoded(data.decode("utf-16").lstrip("\ufeff"), "utf-16")
        except UnicodeDecodeError as exc:
            raise UnreadableFile(
                f"the file starts with a utf-16 byte-order mark but byte {exc.start} is not "
                "valid utf-16"
            ) from None
        return _replace_nuls(decoded)
    nuls = data.count(b"\x00") if b"\x00" in data else 0  # `in` is a memchr: 7x faster
    if nuls > MAX_NUL_SHARE * len(data):
        raise UnreadableFile(
            f"the file contains {nuls:,} NUL bytes: it is binary, or UTF-16 without a "
            "byte-order mark; export it as CSV UTF-8"
        )
    if data.startswith(codecs.BOM_UTF8):
        body = data[len(codecs.BOM_UTF8) :]
        try:
            decoded = Decoded(body.decode("utf-8"), "utf-8-sig")
        except UnicodeDecodeError as exc:
            decoded = _mostly_utf8(body)
            if decoded is None:
                raise UnreadableFile(
                    "the file starts with a utf-8 byte-order mark but most of its non-ASCII "
                    f"bytes are not valid utf-8 (the first at byte {exc.start + 3})"
                ) from None
            decoded.encoding = "utf-8-sig"
        decoded.text = decoded.text.lstrip("\ufeff")
        return _replace_nuls(decoded)
    try:
        decoded = Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        decoded = _mostly_utf8(data)
        if decoded is None:
            try:
                decoded = Decoded(data.decode("cp1252"), "windows-1252")
            except UnicodeDecodeError:
                decoded = Decoded(data.decode("latin-1"), "latin-1")
    return _replace_nuls(decoded)


def _replace_nuls(decoded: Decoded) -> Decoded:
    """A NUL is never a customer's text: it becomes `REPLACEMENT` and its row is reported
    (the field counting below also relies on the text holding no NUL)."""
    if "\x00" in decoded.text:
        decoded.replaced += decoded.text.count("\x00")
        decoded.text = decoded.text.replace("\x00", REPLACEMENT)
    return decoded


def _line_end(text: str) -> str:
    """Polars splits records on one character: "\\n" covers LF and CRLF, old Macs use CR."""
    return "\r" if "\n" not in text and "\r" in text else "\n"


def detect_delimiter(text: str) -> str:
    """The candidate that splits most sampled records into the same number (> 1) of fields."""
    sample = text[:_SNIFF_CHARS]
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        if delimiter not in sample:
            continue
        widths = Counter(len(r) for r in _sample_records(sample, delimiter) if r)
        total = sum(widths.values())
        split = [(n, width) for width, n in widths.items() if width > 1]
        if not split:
            continue
        n, width = max(split)
        score = (n / total, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _sample_records(sample: str, delimiter: str, limit: int = 50) -> list[list[str]]:
    # Drop the last, possibly cut, line of the sample.
    lines = sample.splitlines(keepends=True)
    if len(lines) > 1 and len(sample) >= _SNIFF_CHARS:
        lines = lines[:-1]
    try:
        reader = csv.reader(io.StringIO("".join(lines), newline=""), delimiter=delimiter)
        return [row for _, row in zip(range(limit), reader, strict=False)]
    except csv.Error:
        return []


def _compact(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def normalise_header(name: str) -> str:
    """Headers match case-insensitively after trimming whitespace and a byte-order mark."""
    return name.replace("\ufeff", "").strip().lower()


def map_header(
    headers: list[str], spec: FileSpec, mapping: dict[str, str] | None = None
) -> tuple[dict[int, str], list[str], list[str]]:
    """Map source column positions to contract names.

    `mapping` is the tenant's own (header -> contract name, set by `jf tenant set --map`):
    it wins over everything below, the header matched ignoring case and edge spaces.
    Returns (position -> contract name, ignored headers, conflicts). An exact contract
    name beats an alias, an alias beats a fallback alias (an owner's id or name), and
    fallback aliases rank in their listed order; two headers of the same rank for one
    field is a conflict. Aliases match ignoring case, spaces and punctuation, so
    Salesforce's `ACCOUNTID`, `AccountId` and `Account.Id` all match `Account ID`.
    """
    by_exact = {c.name.lower(): c.name for c in spec.columns}
    by_alias: dict[str, tuple[str, int]] = {}
    for c in spec.columns:
        for label in (c.name, *c.aliases):
            by_alias.setdefault(_compact(label), (c.name, 1))
        for rank, label in enumerate(c.fallback_aliases, start=2):
            by_alias.setdefault(_compact(label), (c.name, rank))

    by_tenant = {normalise_header(h): c for h, c in (mapping or {}).items()}
    candidates: dict[str, list[tuple[int, int]]] = {}  # contract name -> [(rank, position)]
    for position, header in enumerate(headers):
        norm = normalise_header(header)
        if norm in by_tenant:
            candidates.setdefault(by_tenant[norm], []).append((-1, position))
        elif norm in by_exact:
            candidates.setdefault(by_exact[norm], []).append((0, position))
        elif _compact(norm) in by_alias and _compact(norm):
            name, rank = by_alias[_compact(norm)]
            candidates.setdefault(name, []).append((rank, position))

    mapping: dict[int, str] = {}
    conflicts: list[str] = []
    for name, found in candidates.items():
        best_rank = min(rank for rank, _ in found)
        best = [position for rank, position in found if rank == best_rank]
        if len(best) > 1:
            conflicts.append(f"{name}: " + " and ".join(repr(headers[p].strip()) for p in best))
        mapping[best[0]] = name
    ignored = [h.strip() for p, h in enumerate(headers) if p not in mapping and h.strip()]
    return mapping, ignored, conflicts


def _record_widths(
    text: str, utf8: bytes, delimiter: str, eol: str, skip_initial_space: bool = False
) -> pl.Series:
    """Fields per physical record, quote-aware; 0 for an empty line.

    Vectorised when records are lines (no quoted field spans a line end) and quotes only
    wrap whole fields; otherwise Python's csv module counts them.
    """
    has_quote = '"' in text
    if "\x1f" in text:  # the unit separator is our "never a field separator" below
        lines = pl.Series("line", text.split(eol), dtype=pl.String)
        if len(lines) and lines[-1] == "":
            lines = lines.head(-1)
        if eol == "\n":
            lines = lines.str.strip_suffix("\r")
    else:  # polars splits lines fastest: one column, no quoting
        lines = pl.read_csv(
            io.BytesIO(utf8),
            has_header=False,
            separator="\x1f",
            quote_char=None,
            eol_char=eol,
            schema={"line": pl.String},
            empty_string_is_null=False,
            raise_if_empty=False,
        ).to_series()
    # `a, "b,c"` (a space before the opening quote): only the csv module reads it.
    if not (skip_initial_space and has_quote):
        # Each quoted field that starts a line or follows a delimiter becomes one NUL
        # (decoding replaced every NUL of the file, so the text holds none). A leftover quote (one inside a field), or a
        # NUL followed by anything but a delimiter, means we cannot count simply. One lazy
        # query, so polars spreads the string work over all cores.
        d = re.escape(delimiter)
        line = pl.col("line")
        if has_quote:
            line = line.str.replace(r'^"(?:[^"]|"")*"', "\x00").str.replace_all(
                rf'{d}"(?:[^"]|"")*"', delimiter.replace("$", "$$") + "\x00"
            )
        counted = (
            pl.LazyFrame({"line": lines})
            .select(line)
            .select(
                width=pl.when(pl.col("line").str.len_bytes() == 0)
                .then(0)
                .otherwise(pl.col("line").str.count_matches(delimiter, literal=True) + 1)
                .cast(pl.Int64),
                unsure=pl.col("line").str.contains('"', literal=True).any()
                | pl.col("line").str.contains(rf"\x00[^{d}]").any(),
            )
            .collect()
        )
        if counted.height == 0 or not counted["unsure"][0]:
            # One chunk: with the lazy result's several chunks, polars 2.1 panicked later in
            # a string expression on the rows filtered by these widths (test_properties).
            return counted["width"].rechunk()
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=skip_initial_space
    )
    return pl.Series([len(row) for row in reader], dtype=pl.Int64)


@dataclass
class ParsedCsv:
    """A CSV's cells before any contract is applied."""

    headers: list[str]
    body: pl.DataFrame
    """`row_number`, `_width` (fields in the record) and cells `c0`..`c{n-1}` as strings."""
    encoding: str
    delimiter: str
    blank: pl.Series | None = None
    """Per body row: every cell is empty or whitespace."""
    skipped_lines: int = 0
    """Records above the header (blank lines, a report's title) that were skipped."""
    preamble: int = 0
    """How many of them were not blank (a title, notes)."""
    open_quote: bool = False
    """The last record opens a quote that is never closed: it swallowed the rest of the file."""
    replaced: int = 0
    """Undecodable byte sequences and NUL bytes that decoding replaced by `REPLACEMENT`."""


class EmptyFile(ValueError):
    pass


HEADER_SEARCH_ROWS = 20
"""How many leading records may be a report's title or notes before the real header."""


def parse_csv(
    data: bytes,
    header_score: Callable[[list[str]], int] | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> ParsedCsv:
    """Decode and split into records and cells; raises `UnreadableFile` or `EmptyFile`.

    The header is the first non-blank record, unless `header_score` prefers a later one
    among the first `HEADER_SEARCH_ROWS` (exports from report builders put titles above it).
    """
    if len(data) > max_bytes:
        raise FileTooLarge(
            f"the file is {len(data) / 2**20:.0f} MB; the limit is {max_bytes / 2**20:.0f} MB "
            "(JF_MAX_FILE_MB)"
        )
    decoded = decode(data)
    text, encoding = decoded.text, decoded.encoding
    if not text or text.isspace():  # isspace stops at the first other character
        raise EmptyFile("it has no header row")
    delimiter = detect_delimiter(text)
    eol = _line_end(text)
    # `a, "b,c"`: a space before the opening quote. Only the csv module can read it.
    spaced_quotes = re.search(re.escape(delimiter) + r' +"', text[:_SNIFF_CHARS]) is not None
    utf8 = _utf8_bytes(data, text, encoding, decoded.replaced)
    widths = _record_widths(text, utf8, delimiter, eol, skip_initial_space=spaced_quotes)
    width = max(int(widths.max() or 0), 1)
    if width > MAX_COLUMNS:
        raise FileTooLarge(f"a row has {width:,} fields; the limit is {MAX_COLUMNS:,} columns")
    open_quote = _ends_inside_quotes(text, delimiter, spaced_quotes)
    replaced = decoded.replaced
    frame = None
    if not spaced_quotes:
        # polars reads the bytes: the decoded text (as large as the file, up to 4x for
        # non-Latin text) is let go first, so the two never share the memory peak. The csv
        # module's reading below decodes again (the same text: decoding is deterministic).
        text = decoded = None
        try:
            frame = pl.read_csv(
                io.BytesIO(utf8),  # UTF-8 input as delivered: no second copy of a large file
                has_header=False,
                separator=delimiter,
                eol_char=eol,
                schema={f"c{i}": pl.String for i in range(width)},
                empty_string_is_null=False,
                missing_columns="insert",
                raise_if_empty=False,
            )
        except pl.exceptions.ComputeError:
            frame = None
    if frame is None or frame.height != len(widths):
        # polars and Python's csv module disagree on some malformed quoting; the csv
        # module's reading is the one the widths came from, so it decides.
        if text is None:
            text = decode(data).text
        frame = _frame_with_csv_module(text, delimiter, width, spaced_quotes)
        text = None
    cells = frame.columns
    non_blank = frame.select(
        pl.any_horizontal(pl.col(c).str.strip_chars() != "" for c in cells)
    ).to_series()
    if not non_blank.any():
        raise EmptyFile("it has no header row")
    candidates = [int(i) for i in non_blank.arg_true()[:HEADER_SEARCH_ROWS]]
    header_at = candidates[0]
    if header_score is not None:
        scores = [header_score(_row_cells(frame, i, widths)) for i in candidates]
        if max(scores) > scores[0]:
            header_at = candidates[scores.index(max(scores))]
    header_width = int(widths[header_at])
    headers = _row_cells(frame, header_at, widths)
    body = (
        frame.slice(header_at + 1)
        .select(cells[:header_width])
        .with_columns(
            pl.int_range(1, frame.height - header_at, dtype=pl.Int64).alias("row_number"),
            widths.slice(header_at + 1).alias("_width"),
        )
    )
    return ParsedCsv(
        headers,
        body.select("row_number", "_width", *cells[:header_width]),
        encoding,
        delimiter,
        blank=~non_blank.slice(header_at + 1),
        skipped_lines=header_at,
        preamble=candidates.index(header_at),
        open_quote=open_quote,
        replaced=replaced,
    )


def _ends_inside_quotes(text: str, delimiter: str, skip_initial_space: bool) -> bool:
    # An odd number of quote characters is the cheap hint; the strict csv reader decides.
    if text.count('"') % 2 == 0:
        return False
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        skipinitialspace=skip_initial_space,
        strict=True,
    )
    try:
        for _ in reader:
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _utf8_bytes(data: bytes, text: str, encoding: str, replaced: int) -> bytes:
    if replaced:  # the bytes as delivered still hold what was replaced
        return text.encode("utf-8")
    if encoding == "utf-8":
        return data
    if encoding == "utf-8-sig":
        return data[len(codecs.BOM_UTF8) :]
    return text.encode("utf-8")


def _row_cells(frame: pl.DataFrame, index: int, widths: pl.Series) -> list[str]:
    return [h or "" for h in frame.row(index)[: int(widths[index])]]


def _frame_with_csv_module(
    text: str, delimiter: str, width: int, skip_initial_space: bool
) -> pl.DataFrame:
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=skip_initial_space
    )
    rows = [row + [""] * (width - len(row)) for row in reader]
    return pl.DataFrame(rows, schema={f"c{i}": pl.String for i in range(width)}, orient="row")


def _list_headers(headers: list[str], most: int = 20) -> str:
    shown = ", ".join(repr(h.strip()[:60]) for h in headers[:most]) or "no columns"
    return shown + (f" and {len(headers) - most:,} more" if len(headers) > most else "")


def _required_matched(
    cells: list[str], spec: FileSpec, mapping: dict[str, str] | None = None
) -> int:
    mapping, _, _ = map_header(cells, spec, mapping)
    return sum(1 for name in mapping.values() if name in spec.required)


def read_table(
    data: bytes,
    spec: FileSpec,
    *,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    mapping: dict[str, str] | None = None,
) -> ReadTable:
    """Read one landing file. Never raises for bad content: problems say what went wrong.
    `mapping`: the tenant's own header -> contract column mapping (see `map_header`)."""
    file = spec.file_name
    tenant_mapping = mapping
    try:
        parsed = parse_csv(
            data,
            header_score=lambda cells: _required_matched(cells, spec, tenant_mapping),
            max_bytes=max_bytes,
        )
    except UnreadableFile as exc:
        return _rejected(spec, file_problem(file, "file_unreadable", f"{file}: {exc}"))
    except EmptyFile as exc:
        return _rejected(spec, file_problem(file, "file_empty", f"{file} is empty: {exc}"))
    except FileTooLarge as exc:
        return _rejected(spec, file_problem(file, "file_too_large", f"{file} is too large: {exc}"))

    headers, encoding, delimiter = parsed.headers, parsed.encoding, parsed.delimiter
    header_width = len(headers)
    mapping, ignored, conflicts = map_header(headers, spec, tenant_mapping)
    header_mapping = {headers[p].strip(): name for p, name in mapping.items()}

    missing = [name for name in spec.required if name not in mapping.values()]

    body = parsed.body
    cells = [f"c{i}" for i in range(header_width)]
    # A record no wider than the header has no cells past it, so blank over all its cells
    # (parse_csv's answer) is blank over the header's.
    body = body.filter(~(parsed.blank & (pl.col("_width") <= header_width)))
    malformed = body.filter(pl.col("_width") != header_width)
    problems = [_malformed_problems(malformed, file, header_width, cells)]
    body = body.filter(pl.col("_width") == header_width)
    if parsed.open_quote and body.height:
        problems.append(
            row_problems(
                body.tail(1),
                file=file,
                reason="malformed_row",
                value=_joined_cells(cells),
                message=pl.format(
                    "row {} opens a quote that is never closed, so every line after it was read "
                    "into this row; close the quote and upload again",
                    "row_number",
                ),
            )
        )
        body = body.head(-1)
    oversized = body.select(
        "row_number",
        pl.coalesce(
            pl.when(pl.col(c).str.len_chars() > MAX_CELL_CHARS).then(
                pl.lit(headers[i].strip() or f"column {i + 1}")
            )
            for i, c in enumerate(cells)
        ).alias("_column"),
    ).filter(pl.col("_column").is_not_null())
    if oversized.height:
        problems.append(
            row_problems(
                oversized,
                file=file,
                reason="cell_too_long",
                value=pl.lit(None, pl.String),
                column_expr=pl.col("_column"),
                message=pl.format(
                    "row {}: a cell of column {} is longer than {} characters",
                    "row_number",
                    "_column",
                    pl.lit(f"{MAX_CELL_CHARS:,}"),
                ),
            )
        )
        body = body.filter(~pl.col("row_number").is_in(oversized["row_number"].implode()))
    if parsed.replaced and mapping:  # no contract column: nothing to garble
        problems.append(_garbled_rows(body, file, headers, sorted(mapping), encoding))
        body = body.filter(
            ~pl.any_horizontal(
                pl.col(f"c{p}").str.contains(REPLACEMENT, literal=True) for p in mapping
            ).fill_null(False)
        )

    used: set[str] = set(spec.names)
    columns = [pl.col("row_number")]
    for name in spec.names:
        position = next((p for p, n in mapping.items() if n == name), None)
        columns.append(
            (pl.col(f"c{position}") if position is not None else pl.lit(None, pl.String)).alias(
                name
            )
        )
    for position, header in enumerate(headers):
        if position in mapping or not header.strip():
            continue
        extra = normalise_header(header)
        while extra in used:
            extra += "_"
        used.add(extra)
        columns.append(pl.col(f"c{position}").alias(extra))
    if parsed.preamble:
        problems.append(
            file_problem(
                file,
                "preamble_skipped",
                f"{file}: {parsed.preamble} line(s) above the header row were skipped "
                f"(the header is line {parsed.skipped_lines + 1})",
            )
        )
    if ignored:
        problems.append(
            file_problem(
                file,
                "ignored_columns",
                f"{file}: column(s) not in the contract were ignored: {', '.join(ignored)}",
                value=", ".join(ignored),
            )
        )
    frame = body.select(columns)
    if missing or conflicts:
        # Rejected as a whole, but the columns that were found are still read and (by
        # clean_table) checked, so one report lists every problem: one round trip.
        header = []
        if missing:
            hints = _candidates(body, headers, mapping, missing, spec)
            header.append(
                file_problem(
                    file,
                    "missing_columns",
                    f"{file} is missing required column(s) {', '.join(missing)}; "
                    f"found: {_list_headers(headers)}" + "".join(f"; {h}" for h in hints),
                    value=", ".join(missing),
                )
            )
        if conflicts:
            header.append(
                file_problem(
                    file,
                    "ambiguous_columns",
                    f"{file} has more than one column for the same field ({'; '.join(conflicts)}); "
                    "keep one of them",
                    value="; ".join(conflicts),
                )
            )
        return ReadTable(
            frame=frame,
            problems=concat_problems(header + problems),
            rejected=True,
            encoding=encoding,
            delimiter=delimiter,
            header_mapping=header_mapping,
            ignored_columns=ignored,
            missing_columns=missing,
            header_line=parsed.skipped_lines + 1,
        )
    return ReadTable(
        frame=frame,
        problems=concat_problems(problems),
        rejected=False,
        encoding=encoding,
        delimiter=delimiter,
        header_mapping=header_mapping,
        ignored_columns=ignored,
        header_line=parsed.skipped_lines + 1,
    )


CANDIDATE_SAMPLE = 1_000
"""Values of an unmatched column looked at to guess which missing column it might be."""


def _shape_fit(values: pl.Series, column: Column, key: bool) -> float:
    """Share of `values` (present, trimmed) that look like `column`'s kind; 0..1."""
    n = values.len()
    if n == 0:
        return 0.0
    if column.kind is Kind.ID:
        idlike = values.str.contains(r"^[\w.:/#-]{1,64}$") & values.str.contains(r"\d")
        share = float(idlike.mean() or 0.0)
        return share * (values.n_unique() / n) if key else share
    parser = {Kind.DATE: parse_dates, Kind.MONEY: parse_money, Kind.EMAIL: parse_emails}.get(
        column.kind
    )
    if parser is not None:
        return float(parser(values).values.is_not_null().mean() or 0.0)
    if column.kind is Kind.URL:
        return float(parse_urls(values).values.is_not_null().mean() or 0.0)
    return 0.5 * float(values.str.contains(r"\p{L}").mean() or 0.0)


def _name_fit(header: str, column: Column) -> float:
    compact = _compact(header)
    labels = (column.name, *column.aliases, *column.fallback_aliases)
    return max(difflib.SequenceMatcher(None, compact, _compact(label)).ratio() for label in labels)


def _candidates(
    body: pl.DataFrame,
    headers: list[str],
    mapping: dict[int, str],
    missing: list[str],
    spec: FileSpec,
) -> list[str]:
    """For each missing column, the file's unmatched columns most likely to be it, judged by
    their names and the shape of their values, as sentences for the customer:
    "'Opp Ref' holds 12 unique values like '0061x00000…': is it deal_unique_id?"."""
    unmatched = [p for p, h in enumerate(headers) if p not in mapping and h.strip()]
    sample = body.head(CANDIDATE_SAMPLE)
    values = {p: missing_to_null_series(sample[f"c{p}"]).drop_nulls() for p in unmatched}
    hints = []
    shapes: dict[tuple[int, Kind, bool], float] = {}  # each column judged once per kind
    for name in missing:
        column = spec.column(name)
        key = name == spec.key
        scored = []
        for p in unmatched:
            if (p, column.kind, key) not in shapes:
                shapes[p, column.kind, key] = _shape_fit(values[p], column, key=key)
            shape = shapes[p, column.kind, key]
            label = _name_fit(headers[p], column)
            typed = column.kind is not Kind.TEXT
            if (typed and shape >= 0.8) or label >= 0.75 or (not typed and shape and label >= 0.5):
                scored.append((shape + label, p))
        for _, p in sorted(scored, reverse=True)[:2]:
            present = values[p]
            if present.len():
                example = present[0] if len(present[0]) <= 12 else present[0][:10] + "\u2026"
                distinct = missing_to_null_series(body[f"c{p}"]).drop_nulls().n_unique()
                what = f"holds {distinct:,} unique values like {example!r}"
            else:
                what = "is empty"
            hints.append(f"{headers[p].strip()[:60]!r} {what}: is it {name}?")
    return hints


def _garbled_rows(
    body: pl.DataFrame, file: str, headers: list[str], positions: list[int], encoding: str
) -> pl.DataFrame:
    """Rows whose contract cells hold a replaced byte: `invalid_encoding` errors naming the
    first such column and showing its value with the replacement visible. Columns outside
    the contract are never published, so a stray byte there loses nothing."""
    has = {p: pl.col(f"c{p}").str.contains(REPLACEMENT, literal=True) for p in positions}
    rows = body.select(
        "row_number",
        pl.coalesce(
            pl.when(has[p]).then(pl.lit(headers[p].strip() or f"column {p + 1}")) for p in positions
        ).alias("_column"),
        pl.coalesce(
            pl.when(has[p]).then(pl.col(f"c{p}").str.slice(0, 200)) for p in positions
        ).alias("_value"),
    ).filter(pl.col("_column").is_not_null())
    what = "UTF-8" if encoding.startswith("utf-8") else encoding
    return row_problems(
        rows,
        file=file,
        reason="invalid_encoding",
        value=pl.col("_value"),
        column_expr=pl.col("_column"),
        message=pl.format(
            "row {}: column {} holds bytes that are not valid {} text or NUL bytes (shown as "
            "\ufffd); the row was left out, retype that cell and upload again",
            "row_number",
            "_column",
            pl.lit(what),
        ),
    )


def _joined_cells(cells: list[str]) -> pl.Expr:
    return pl.concat_str([pl.col(c) for c in cells], separator=" | ").str.slice(0, 200)


def _malformed_problems(
    rows: pl.DataFrame, file: str, width: int, cells: list[str]
) -> pl.DataFrame:
    return row_problems(
        rows,
        file=file,
        reason="malformed_row",
        value=_joined_cells(cells),
        message=pl.format(
            "row {} has {} fields but the header has {}; check for an unquoted delimiter or a cut line",
            pl.col("row_number"),
            pl.col("_width"),
            pl.lit(width),
        ),
    )


def empty_table(spec: FileSpec) -> pl.DataFrame:
    """The frame of a file with no rows: `row_number` and every contract column."""
    return pl.DataFrame(schema={"row_number": pl.Int64, **{n: pl.String for n in spec.names}})


def _rejected(spec: FileSpec, problems: pl.DataFrame, **info) -> ReadTable:
    return ReadTable(frame=empty_table(spec), problems=problems, rejected=True, **info)
