"""A read file -> typed rows that may be published, and a problem for every row left out.

Driven by the contract table: each column's `Kind` picks its parser, `must_have_value`
decides whether a bad value drops the row (error) or is blanked (warning).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import polars as pl

from jf_pipeline.contract import DUCKDB_TYPES, OWNER_REF, Column, FileSpec, Kind
from jf_pipeline.core.landing import LandingFile
from jf_pipeline.core.problems import (
    REASONS,
    concat_problems,
    file_problem,
    row_problems,
)
from jf_pipeline.core.reading import ReadTable
from jf_pipeline.core.tenant_settings import matches_stage
from jf_pipeline.core.values import (
    ParsedColumn,
    missing_to_null,
    null_reference_to_null,
    parse_dates,
    parse_emails,
    parse_money,
    parse_urls,
)

POLARS_TYPES = {"VARCHAR": pl.String(), "DATE": pl.Date(), "DECIMAL(18,2)": pl.Decimal(18, 2)}

PARSERS = {
    Kind.DATE: parse_dates,
    Kind.MONEY: parse_money,
    Kind.EMAIL: parse_emails,
    Kind.URL: parse_urls,
}


@dataclass
class CleanTable:
    """The rows of one file that may be published, and every problem found in it."""

    rows: pl.DataFrame
    """`row_number` + each contract column under its warehouse name, typed."""
    problems: pl.DataFrame
    rejected: bool
    """The file as a whole was unusable: the tenant's published data from it must stay."""
    source: LandingFile | None = None
    """The landing file (key, version, size) these rows came from; None if it was absent."""
    header_line: int = 1
    """The header's spreadsheet line (`ReadTable.header_line`)."""
    filtered: int = 0
    """Rows left out because the tenant does not import their deal stage (not errors)."""
    owner_source: str | None = None
    """Set when the owner column holds user ids or names instead of e-mails: which column
    held what ("column 'OwnerId' holds user ids such as '0051x0000…'"). The rows then carry
    the owner as written in `owner_ref`, for `rules.resolve_owners`."""
    delivered: pl.DataFrame | None = None
    """The cells as delivered of the rows left out for an error found while cleaning:
    `row_number` + each of the file's contract columns under the customer's own header
    (for the customer's error file, `report.error_files`)."""
    headers: dict[str, str] = field(default_factory=dict)
    """contract column -> the customer's header for it, in the file's order."""


def clean_schema(spec: FileSpec) -> dict[str, pl.DataType]:
    schema = {
        "row_number": pl.Int64(),
        **{c.out: POLARS_TYPES[DUCKDB_TYPES[c.kind]] for c in spec.columns},
    }
    if _by_reference(spec) is not None:
        schema[OWNER_REF] = pl.String()
    return schema


def _by_reference(spec: FileSpec) -> Column | None:
    """The column that may hold its field by reference (deals' owner), if the file has one."""
    return next((c for c in spec.columns if c.fallback_aliases), None)


def _held_by_reference(values: pl.Series) -> bool:
    """An owner column of user ids or names, recognised by its values: most of its distinct
    present values have no `@`."""
    distinct = values.drop_nulls().unique()
    if distinct.len() == 0:
        return False
    return float(distinct.str.contains("@", literal=True).mean() or 0.0) < 0.5


def _describe_references(header: str, values: pl.Series) -> str:
    distinct = values.drop_nulls().unique(maintain_order=True)
    ids = float((distinct.str.contains(r"\d") & ~distinct.str.contains(r"\s")).mean() or 0.0)
    what = "user ids" if ids >= 0.5 else "names"
    example = distinct[0] if len(distinct[0]) <= 24 else distinct[0][:22] + "\u2026"
    return f"column {header!r} holds {what}, not e-mails (e.g. {example!r})"


def _message(column: str, reason: str) -> pl.Expr:
    """E.g. "target_close_date '2017-02-30': the value is not a real calendar date"."""
    return pl.format(
        "{} '{}': {}", pl.lit(column), pl.col(f"_raw_{column}"), pl.lit(REASONS[reason][1])
    )


PARALLEL_MIN_ROWS = 50_000
"""Below this, starting threads costs more than it saves."""


def _parse_columns(
    frame: pl.DataFrame, spec: FileSpec, skip: set[str] = frozenset(), day_order: str = "auto"
) -> list[ParsedColumn]:
    """Each column through its parser. The parsers are independent and polars releases the
    GIL, so they run on all cores at once; most of their string work is single-threaded.
    Columns in `skip` (an owner held by reference) come back empty and unjudged."""

    def parse(column) -> ParsedColumn:
        values = frame[column.name]
        parser = PARSERS.get(column.kind)
        if column.name in skip:
            nulls = pl.repeat(None, len(values), dtype=pl.String, eager=True)
            return ParsedColumn(nulls.cast(POLARS_TYPES[DUCKDB_TYPES[column.kind]]), nulls)
        if parser is None:
            return ParsedColumn(values, pl.repeat(None, len(values), dtype=pl.String, eager=True))
        if column.kind is Kind.DATE:
            return parser(values, day_order)
        return parser(values)

    typed = [c for c in spec.columns if c.kind in PARSERS]
    if frame.height < PARALLEL_MIN_ROWS or len(typed) < 2:
        return [parse(c) for c in spec.columns]
    with ThreadPoolExecutor(max_workers=min(len(typed), os.cpu_count() or 1)) as pool:
        # The slowest parsers first, so the others fill in around them.
        futures = {c.name: pool.submit(parse, c) for c in sorted(typed, key=_parse_cost)}
        return [futures[c.name].result() if c.name in futures else parse(c) for c in spec.columns]


def _parse_cost(column) -> int:
    return [Kind.MONEY, Kind.URL, Kind.EMAIL, Kind.DATE].index(column.kind)


STAGE = "deal_stage"


def _filter_stages(
    read: ReadTable, spec: FileSpec, stages: tuple[str, ...]
) -> tuple[ReadTable, int, pl.DataFrame | None]:
    """Deals in the tenant's stages only: (the rows kept, how many were left out, a note or
    a whole-file error). A stage filter on a file without a stage column rejects it."""
    file = spec.file_name
    if STAGE not in read.header_mapping.values():
        message = (
            f"{file} has no deal stage column, but this tenant imports only deals in the "
            f"stages {', '.join(repr(s) for s in stages)}; export the stage with the deals "
            "(e.g. StageName, Deal Stage) or clear the stage filter (jf tenant set ... "
            "--stages '')"
        )
        problem = file_problem(file, "stage_column_missing", message, column=STAGE)
        rejected = replace(read, problems=concat_problems([read.problems, problem]), rejected=True)
        return rejected, 0, None
    keep = matches_stage(stages)
    left_out = read.frame.filter(~keep)
    if not left_out.height:
        return read, 0, None
    by_stage = (
        left_out.group_by(pl.col(STAGE).fill_null("(blank)"))
        .len()
        .sort(["len", STAGE], descending=[True, False])
    )
    shown = ", ".join(f"{stage!r}: {n}" for stage, n in by_stage.head(5).iter_rows())
    more = f" and {by_stage.height - 5} more stage(s)" if by_stage.height > 5 else ""
    note = file_problem(
        file,
        "deals_filtered",
        f"{file}: {left_out.height} deal(s) in stages this tenant does not import were left "
        f"out ({shown}{more}); imported stages: {', '.join(repr(s) for s in stages)}",
        column=STAGE,
        value=str(left_out.height),
    )
    return replace(read, frame=read.frame.filter(keep)), left_out.height, note


def clean_table(
    read: ReadTable,
    spec: FileSpec,
    *,
    day_order: str = "auto",
    stages: tuple[str, ...] = (),
    default_owner: str | None = None,
) -> CleanTable:
    """Type every column, drop rows with errors, keep the last row of each duplicated id.

    The tenant's settings arrive as parameters: `day_order` (auto, dmy, mdy) for its dates,
    `stages` (deals only) the deal stages to import; the others are left out, counted
    (`CleanTable.filtered`) and noted, not reported as errors. `default_owner` (deals
    only): a deal without an owner gets it, with an `owner_defaulted` warning."""
    file = spec.file_name
    empty = pl.DataFrame(schema=clean_schema(spec))
    filtered, stage_note = 0, None
    if stages and STAGE in spec.names and not (read.rejected and read.frame.height == 0):
        read, filtered, stage_note = _filter_stages(read, spec, tuple(stages))
        if stage_note is not None:
            read = replace(read, problems=concat_problems([read.problems, stage_note]))
    if read.rejected and read.frame.height == 0:
        return CleanTable(empty, read.problems, rejected=True, header_line=read.header_line)
    # A file rejected for its header still has its found columns checked (one round trip):
    # their row problems are reported, and no row is published.
    found = [c for c in spec.columns if c.name not in read.missing_columns]

    def cleaned(c: Column) -> pl.Expr:
        expr = missing_to_null(pl.col(c.name), trimmed=True)
        return null_reference_to_null(expr) if c.kind is Kind.ID else expr

    frame = read.frame.select(
        "row_number",
        *[pl.col(c.name).alias(f"_raw_{c.name}") for c in spec.columns],
        *[pl.col(c.name).str.strip_chars() for c in spec.columns],
    ).with_columns(cleaned(c).alias(c.name) for c in spec.columns)
    problems = [read.problems]
    error_flags: list[pl.Series] = []
    typed: dict[str, pl.Series] = {}
    owner_source = None
    by_reference = _by_reference(spec)
    if by_reference is not None and by_reference in found:
        refs = null_reference_to_null(pl.col(by_reference.name))
        frame = frame.with_columns(refs.alias(by_reference.name))
        if _held_by_reference(frame[by_reference.name]):
            header = next(
                (h for h, n in read.header_mapping.items() if n == by_reference.name),
                by_reference.name,
            )
            owner_source = _describe_references(header, frame[by_reference.name])
    if default_owner and by_reference is not None and by_reference in found:
        name = by_reference.name
        blank = frame[name].is_null()
        if blank.any():
            problems.append(
                row_problems(
                    frame.filter(blank),
                    file=file,
                    reason="owner_defaulted",
                    column=name,
                    value=pl.lit(None, pl.String),
                    record_id=spec.key,
                    message=pl.format(
                        "deal {}: no owner; the tenant's default owner {} was used",
                        pl.col(spec.key),
                        pl.lit(default_owner),
                    ),
                )
            )
            frame = frame.with_columns(
                pl.when(blank).then(pl.lit(default_owner)).otherwise(pl.col(name)).alias(name)
            )
    parsed_columns = _parse_columns(
        frame, spec, skip={by_reference.name} if owner_source else set(), day_order=day_order
    )
    for column, parsed in zip(spec.columns, parsed_columns, strict=True):
        if column not in found:
            typed[column.out] = parsed.values.alias(column.out)
            continue
        values = frame[column.name]
        typed[column.out] = parsed.values.alias(column.out)
        for reason, message in parsed.notes:
            problems.append(
                file_problem(
                    file, reason, f"{file} column {column.name}: {message}", column=column.name
                )
            )

        missing = values.is_null()
        bad = parsed.problem.is_not_null()
        with_flags = frame.with_columns(_missing=missing, _problem=parsed.problem)
        if parsed.changed is not None and parsed.changed.is_not_null().any():
            changed = frame.with_columns(_changed=parsed.changed, _stored=parsed.values)
            for reason in parsed.changed.drop_nulls().unique().sort().to_list():
                problems.append(
                    row_problems(
                        changed.filter(pl.col("_changed") == reason),
                        file=file,
                        reason=reason,
                        message=pl.format(
                            "{} '{}' is stored as {}: {}",
                            pl.lit(column.name),
                            pl.col(f"_raw_{column.name}"),
                            pl.col("_stored").cast(pl.String),
                            pl.lit(REASONS[reason][1]),
                        ),
                        column=column.name,
                        record_id=spec.key,
                    )
                )
        if column.must_have_value:
            error_flags.append(missing | bad)
            problems.append(
                row_problems(
                    with_flags.filter(pl.col("_missing")),
                    file=file,
                    reason="missing_value",
                    message=f"{column.name} is required but blank",
                    column=column.name,
                    # A placeholder (`N/A`, `\\N`) means no value: never shown as text.
                    value=pl.lit(None, pl.String),
                    record_id=spec.key,
                )
            )
            for reason in parsed.problem.drop_nulls().unique().to_list():
                problems.append(
                    row_problems(
                        with_flags.filter(pl.col("_problem") == reason),
                        file=file,
                        reason=reason,
                        message=_message(column.name, reason),
                        column=column.name,
                        record_id=spec.key,
                    )
                )
        else:
            if column.required:  # a column that must exist but whose value may be blank
                problems.append(
                    row_problems(
                        with_flags.filter(pl.col("_missing")),
                        file=file,
                        reason="missing_optional_value",
                        message=f"{column.name} is blank",
                        column=column.name,
                        value=pl.lit(None, pl.String),
                        record_id=spec.key,
                    )
                )
            problems.append(
                row_problems(
                    with_flags.filter(pl.col("_problem").is_not_null()),
                    file=file,
                    reason="invalid_optional_value",
                    message=pl.format(
                        "{} '{}' was left blank: {}",
                        pl.lit(column.name),
                        pl.col(f"_raw_{column.name}"),
                        pl.col("_problem").str.replace("_", " "),
                    ),
                    column=column.name,
                    record_id=spec.key,
                )
            )

    rows = pl.DataFrame([frame["row_number"], *typed.values()])
    if by_reference is not None:
        refs = (
            frame[by_reference.name]
            if owner_source
            else pl.repeat(None, frame.height, dtype=pl.String, eager=True)
        )
        rows = rows.with_columns(refs.alias(OWNER_REF))
    has_error = pl.select(pl.any_horizontal(error_flags)).to_series() if error_flags else None
    key = spec.column(spec.key).out
    # Duplicates: the last occurrence of an id wins, whether or not it is valid.
    later = (
        rows.select("row_number", key)
        .filter(pl.col(key).is_not_null())
        .with_columns(winner=pl.col("row_number").last().over(key))
        .filter(pl.col("row_number") != pl.col("winner"))
    )
    if later.height:
        problems.append(
            later.select(
                pl.lit(file).alias("file"),
                "row_number",
                pl.col(key).alias("record_id"),
                pl.lit("warning").alias("severity"),
                pl.lit("duplicate_id").alias("reason"),
                pl.lit(spec.key).alias("column"),
                pl.col(key).alias("value"),
                pl.format(
                    "{} {} appears again in row {}; the later row wins",
                    pl.lit(spec.key),
                    pl.col(key),
                    pl.col("winner"),
                ).alias("message"),
            )
        )
    keep = ~rows["row_number"].is_in(later["row_number"].implode())
    if has_error is not None:
        keep = keep & ~has_error
    problems = concat_problems(problems)
    headers = {contract: header for header, contract in read.header_mapping.items()}
    headers = {c.name: headers[c.name] for c in spec.columns if c.name in headers}
    left_out = problems.filter(pl.col("severity") == "error")["row_number"].drop_nulls()
    delivered = frame.filter(pl.col("row_number").is_in(left_out.implode())).select(
        "row_number", *[pl.col(f"_raw_{name}").alias(name) for name in headers]
    )
    return CleanTable(
        rows=empty if read.rejected else rows.filter(keep).cast(clean_schema(spec)),
        problems=problems,
        rejected=read.rejected,
        owner_source=owner_source,
        header_line=read.header_line,
        filtered=filtered,
        delivered=delivered,
        headers=headers,
    )
