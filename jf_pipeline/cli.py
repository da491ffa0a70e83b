"""`jf`: the pipeline's command line for people and scripts.

    jf ingest [--landing ROOT] [--warehouse PATH] [--tenant ID ...] [--all] [--approve]
    jf approve TENANT [--landing ROOT] [--warehouse PATH] [--workspace FILE] [--wait]
    jf status | jf rejects TENANT | jf sql "QUERY"      [--warehouse PATH] [--json]
    jf history prune --older-than DAYS [--tenant ID] [--dry-run] [--warehouse PATH] [--json]
    jf tenant add|set|show|list|rotate-keys|pause|resume|remove ...   (onboarding.py)
    jf check FOLDER|FILE...|TENANT [--tenant ID]

Runs the same Dagster assets as the sensor-driven runs, in-process and headless, once per
tenant whose landing files changed since its last ingestion (or the named tenants).

Exit codes: 0 every selected tenant was published (rejected rows are in rejected_rows);
1 a tenant's run failed, the publish guard refused a tenant (see --approve), or a named
tenant has no landing folder; 2 bad usage; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import difflib
import getpass
import json
import signal
import sys
import threading
import time
import unicodedata

import duckdb
import polars as pl

from jf_pipeline import warehouse as wh
from jf_pipeline.contract import is_valid_tenant_id
from jf_pipeline.core.landing import file_versions, survey
from jf_pipeline.settings import get as setting

SUMMARY_COLUMNS = [
    ("tenant", "tenant_id"),
    ("outcome", "outcome"),
    ("deals", "deals_published"),
    ("rejected", "deals_rejected"),
    ("accounts", "accounts_published"),
    ("contacts", "contacts_published"),
    ("errors", "errors"),
    ("warnings", "warnings"),
]


MAX_CELL_CHARS = 60
STATUS_CELL_CHARS = 100
"""`jf status` shows reasons whole up to this length."""
"""`jf sql` text output cuts longer cells (with `…`); `--json` is exact."""
NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "U",
)


_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def _warehouse_path(path: str | None) -> str:
    """The warehouse file the read-only commands open (no Dagster import needed)."""
    return path or setting("JF_WAREHOUSE")


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal_safe(value: object) -> str:
    """`value` as text that cannot drive a terminal: control and format characters (ANSI
    escapes, carriage returns, bidi overrides, NUL) are shown escaped, e.g. `\\x1b`.
    Customer data reaches people's terminals through status, rejects and sql."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(
        _escape(ch) if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text
    )


def _safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell and column name made terminal-safe (for the text output only)."""
    frame = frame.rename({c: terminal_safe(c) for c in frame.columns})
    return frame.with_columns(
        pl.col(c).map_elements(terminal_safe, return_dtype=pl.String)
        for c, dtype in frame.schema.items()
        if dtype == pl.String
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jf", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser(
        "ingest",
        help="ingest changed tenants once, headless, and print a summary",
        description="Run raw -> clean -> publish for every tenant whose files changed since "
        "its last ingestion (or the tenants named with --tenant).",
        epilog="Exit codes: 0 all selected tenants published; 1 a tenant failed or was refused "
        "by the publish guard; 2 bad usage; 130 interrupted (Ctrl-C): the tenants after it "
        "were not ingested.",
    )
    ingest.add_argument(
        "--landing",
        help="landing root: a folder or s3://bucket/prefix (default: $JF_LANDING or data/landing)",
    )
    ingest.add_argument(
        "--warehouse", help="DuckDB file (default: $JF_WAREHOUSE or data/warehouse.duckdb)"
    )
    ingest.add_argument(
        "--tenant",
        action="append",
        default=[],
        metavar="ID",
        help="ingest this tenant even if unchanged (repeatable)",
    )
    ingest.add_argument("--all", action="store_true", help="ingest every tenant, changed or not")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON for scripts")
    ingest.add_argument(
        "--approve",
        action="store_true",
        help="approve the named tenants' current files even if the publish guard refuses "
        "them (recorded in ingestions); use with --tenant",
    )
    approve = commands.add_parser(
        "approve",
        help="approve a tenant's refused drop: submit the approve_tenant job to Dagster",
        description="Approve the drop the publish guard refused for TENANT: submits an "
        "approve_tenant run through the Dagster instance in DAGSTER_HOME (default "
        "dagster_home), which the daemon launches and the UI shows with the tenant's tag. "
        "Only that drop is approved: if the tenant's files changed since, nothing is "
        "submitted. Recorded in ingestions (approved, approved_by, approved_at, "
        "approved_version).",
        epilog="Exit codes: 0 submitted (with --wait: published); 1 unknown tenant, nothing "
        "refused to approve, the tenant paused or removed, files changed since the refusal, "
        "or (--wait) the run did not publish; 2 bad usage.",
    )
    approve.add_argument("tenant_id", help="the tenant (landing folder name)")
    approve.add_argument(
        "--landing",
        help="landing root: a folder or s3://bucket/prefix (default: $JF_LANDING or data/landing)",
    )
    approve.add_argument(
        "--warehouse", help="DuckDB file (default: $JF_WAREHOUSE or data/warehouse.duckdb)"
    )
    approve.add_argument(
        "--workspace",
        default="workspace.yaml",
        help="the Dagster workspace file the webserver and daemon load (default: workspace.yaml)",
    )
    approve.add_argument(
        "--wait", action="store_true", help="wait for the run to finish and print its outcome"
    )
    approve.add_argument("--json", action="store_true", help="print JSON for scripts")
    for name, help_text in (
        ("status", "one line per tenant: last ingestion, age, deals, contacts, errors, outcome"),
        ("rejects", "what to tell a customer: a tenant's rejected rows grouped by reason"),
        ("sql", "run a read-only SQL query on the warehouse"),
    ):
        command = commands.add_parser(
            name,
            help=help_text,
            description=help_text + ".",
            epilog="Exit codes: 0 ok; 1 no warehouse or a failed query; 2 bad usage.",
        )
        if name == "rejects":
            command.add_argument("tenant_id", help="the tenant (landing folder name)")
        if name == "sql":
            command.add_argument("query", help='e.g. "SELECT * FROM deals_by_stage"')
        command.add_argument(
            "--warehouse", help="DuckDB file (default: $JF_WAREHOUSE or data/warehouse.duckdb)"
        )
        command.add_argument("--json", action="store_true", help="print JSON for scripts")
    _history_parser(commands)
    _onboarding_commands(commands)
    _events_commands(commands)
    return parser


MAX_HISTORY_DAYS = 36_525
"""--older-than's largest value (a century): DuckDB's intervals overflow far beyond it."""


def _days(text: str) -> int:
    """--older-than: a whole number of days, 0 or more."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if days < 0:
        raise argparse.ArgumentTypeError(f"days cannot be negative: {days}")
    if days > MAX_HISTORY_DAYS:
        raise argparse.ArgumentTypeError(f"more than {MAX_HISTORY_DAYS} days: {days}")
    return days


def _history_parser(commands) -> None:
    history = commands.add_parser(
        "history",
        help="deal, account and contact history: prune old versions",
        description="The warehouse keeps every version of every published row "
        "(deal_history, account_history, contact_history) until pruned.",
    )
    actions = history.add_subparsers(dest="history_command", required=True)
    prune = actions.add_parser(
        "prune",
        help="delete versions that ended more than N days ago",
        description="Delete history versions that ended (valid_to) more than N days ago, for "
        "one tenant or all. Current versions are never deleted; changes older than N days "
        "then no longer show in deal_changes.",
        epilog="Exit codes: 0 ok; 1 no warehouse or unknown tenant; 2 bad usage.",
    )
    prune.add_argument(
        "--older-than", type=_days, required=True, metavar="DAYS", help="age in days (0: all ended)"
    )
    prune.add_argument("--tenant", metavar="ID", help="only this tenant (default: every tenant)")
    prune.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    prune.add_argument(
        "--warehouse", help="DuckDB file (default: $JF_WAREHOUSE or data/warehouse.duckdb)"
    )
    prune.add_argument("--json", action="store_true", help="print JSON for scripts")


def history_prune(
    days: int, tenant: str | None, dry_run: bool, warehouse_path: str | None, as_json: bool
) -> int:
    path = _warehouse_path(warehouse_path)
    if tenant is not None:
        if not is_valid_tenant_id(tenant):
            print(f"not a valid tenant id: {terminal_safe(repr(tenant))}", file=sys.stderr)
            return 2
        known = wh.known_tenants(path)
        if tenant not in known:
            print(unknown_tenant(tenant, known, path), file=sys.stderr)
            return 1
    counts = wh.prune_history(path, days, tenant, dry_run=dry_run)
    if as_json:
        result = {"older_than_days": days, "tenant": tenant, "dry_run": dry_run, "versions": counts}
        print(json.dumps(result, indent=1))
        return 0
    verb = "would delete" if dry_run else "deleted"
    detail = ", ".join(f"{name} {n}" for name, n in counts.items())
    scope = f"tenant {tenant}" if tenant else "every tenant"
    print(
        f"{verb} {sum(counts.values())} history version(s) that ended more than {days} day(s) "
        f"ago, {scope} ({detail}); current versions are kept"
    )
    return 0


LANDING_HELP = "landing root: a folder or s3://bucket/prefix (default: $JF_LANDING or data/landing)"


def _onboarding_commands(commands) -> None:
    """`jf tenant ...` and `jf check` (jf_pipeline/onboarding.py)."""
    tenant = commands.add_parser(
        "tenant",
        help="onboard customers: add, set, show, list, rotate-keys, pause, resume, remove",
        description="Onboard and manage customers (tenants): their folder, their own S3 "
        "credentials and their settings, stored in the landing zone's _jointflows/ area. "
        "Every change is idempotent and recorded in the audit log.",
        epilog="Exit codes: 0 done (or nothing to change); 1 refused (the message says why; "
        "nothing changed); 2 bad usage.",
    )
    actions = tenant.add_subparsers(dest="action", required=True)
    helps = {
        "add": "add a tenant: its folder and, on S3, its own IAM user and key (welcome pack)",
        "set": "change a tenant's settings (the sensor then re-ingests its files)",
        "show": "a tenant's settings and audit log",
        "list": "every tenant with its status and settings version",
        "rotate-keys": "a new access key for the tenant; the old one is deactivated",
        "pause": "stop ingesting the tenant's uploads and deactivate its keys",
        "resume": "ingest the tenant again and reactivate its key",
        "remove": "revoke the tenant's access; --purge also deletes its published rows",
    }
    for action, text in helps.items():
        command = actions.add_parser(action, help=text, description=text + ".")
        if action != "list":
            command.add_argument("tenant_id", help="the tenant (its landing folder name)")
        command.add_argument("--landing", help=LANDING_HELP)
        command.add_argument("--json", action="store_true", help="print JSON for scripts")
        if action == "set":
            command.add_argument(
                "--map",
                action="append",
                default=[],
                metavar="FILE:HEADER=COLUMN",
                help="read the customer's column HEADER of FILE as the contract's COLUMN, "
                "over the built-in aliases (e.g. deals:Id=deal_unique_id); repeatable",
            )
            command.add_argument(
                "--unmap", action="append", default=[], metavar="FILE:HEADER", help="drop a mapping"
            )
            command.add_argument("--day-order", choices=["auto", "dmy", "mdy"])
            command.add_argument(
                "--stages",
                metavar="A,B,...",
                help="import only deals in these stages (comma-separated; '' imports all)",
            )
            command.add_argument(
                "--default-owner", metavar="EMAIL", help="owner for deals without one ('' clears)"
            )
            command.add_argument(
                "--guard-max-drop",
                metavar="SHARE",
                help="the publish guard's allowed fall for this tenant, 0-1 ('default' clears)",
            )
            command.add_argument("--import-report", choices=["on", "off", "default"])
        if action == "remove":
            command.add_argument(
                "--purge",
                action="store_true",
                help="also delete the tenant's rows from every warehouse table and its partition",
            )
            command.add_argument("--yes", action="store_true", help="purge without asking")
            command.add_argument(
                "--warehouse", help="DuckDB file (default: $JF_WAREHOUSE or data/warehouse.duckdb)"
            )
    check = commands.add_parser(
        "check",
        help="validate a drop with a tenant's settings; print what a run would publish",
        description="Validate a drop (a folder, files, or a tenant's current files) with the "
        "tenant's settings and print what a run would publish and report. Publishes nothing.",
        epilog="Exit codes: 0 the drop would be published whole; 1 it would be refused or a "
        "file rejected (or the target is unknown); 2 bad usage.",
    )
    check.add_argument("target", nargs="+", help="a folder, the drop's files, or a tenant id")
    check.add_argument("--tenant", metavar="ID", help="apply this tenant's settings to the files")
    check.add_argument("--landing", help=LANDING_HELP)
    check.add_argument(
        "--warehouse", help="DuckDB file (default: $JF_WAREHOUSE or data/warehouse.duckdb)"
    )
    check.add_argument("--json", action="store_true", help="print JSON for scripts")


def _change(args) -> object:
    from jf_pipeline.core.tenant_settings import Change
    from jf_pipeline.onboarding import OnboardingError, parse_map, parse_unmap

    share = None
    if args.guard_max_drop is not None:
        if args.guard_max_drop == "default":
            share = float("nan")
        else:
            try:
                share = float(args.guard_max_drop)
            except ValueError:
                raise OnboardingError(
                    f"--guard-max-drop {args.guard_max_drop!r}: a share such as 0.5, or default"
                ) from None
            if share != share:  # NaN typed by hand
                raise OnboardingError("--guard-max-drop: a share such as 0.5, or default")
    stages = None
    if args.stages is not None:
        stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    return Change(
        map_columns=tuple(parse_map(m) for m in args.map),
        unmap_columns=tuple(parse_unmap(m) for m in args.unmap),
        day_order=args.day_order,
        stages=stages,
        default_owner=args.default_owner,
        guard_max_drop=share,
        import_report=None
        if args.import_report in (None, "default")
        else args.import_report == "on",
    )


def onboarding(args) -> int:
    """Run `jf tenant ...` or `jf check`; print the result (escaped) or the refusal."""
    from jf_pipeline import onboarding as ob
    from jf_pipeline.resources import landing_store_from_uri

    try:
        landing = landing_store_from_uri(args.landing)
        by = _user()
        if args.command == "check":
            result = ob.check(landing, args.target, args.tenant, _warehouse_path(args.warehouse))
        elif args.action == "add":
            result = ob.add(landing, args.tenant_id, by)
        elif args.action == "set":
            change = _change(args)
            if change == type(change)() and args.import_report != "default":
                print(
                    "nothing to set: give at least one option (see jf tenant set -h)",
                    file=sys.stderr,
                )
                return 2
            result = ob.set_settings(landing, args.tenant_id, change, by)
        elif args.action == "show":
            result = ob.show(landing, args.tenant_id)
        elif args.action == "list":
            result = ob.list_tenants(landing)
        elif args.action == "rotate-keys":
            result = ob.rotate_keys(landing, args.tenant_id, by)
        elif args.action in ("pause", "resume"):
            result = ob.set_paused(landing, args.tenant_id, args.action == "pause", by)
        else:  # remove
            if args.purge and not args.yes and not _confirmed(args.tenant_id):
                print("not confirmed: nothing changed", file=sys.stderr)
                return 1
            result = ob.remove(
                landing,
                args.tenant_id,
                by,
                args.purge,
                _warehouse_path(args.warehouse),
                _dagster_instance() if args.purge else None,
            )
    except ob.OnboardingError as exc:
        print(terminal_safe(exc), file=sys.stderr)
        return 1
    except Exception as exc:
        if not type(exc).__module__.startswith("botocore"):
            raise
        # AWS refused or could not be reached (no IAM rights, no credentials, no network)
        print(f"AWS: {terminal_safe(one_line(exc))}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.data, default=str, indent=1))
    else:
        for line in result.lines:
            print(terminal_safe(line))
    return result.code


def _confirmed(tenant: str) -> bool:
    """The operator types the tenant id to confirm a purge (no terminal: not confirmed)."""
    print(
        f"This deletes every published row of {tenant} (all tables) and its partition.",
        file=sys.stderr,
    )
    try:
        answer = input(f"Type {tenant} to confirm: ")
    except EOFError:
        return False
    return answer.strip() == tenant


def _dagster_instance():
    """The deployment's Dagster instance (DAGSTER_HOME), for deleting a partition; None
    without one (then only the warehouse is purged)."""
    from dagster import DagsterInstance
    from dagster._core.errors import DagsterHomeNotSetError

    try:
        return DagsterInstance.get()
    except (DagsterHomeNotSetError, OSError):
        return None


def _events_commands(commands) -> None:
    """`jf events setup` (issue 18)."""
    events = commands.add_parser(
        "events",
        help="S3 event notifications for the landing sensor (JF_EVENTS)",
        description="S3 event notifications for the landing sensor (JF_EVENTS).",
    )
    events_commands = events.add_subparsers(dest="events_command", required=True)
    setup = events_commands.add_parser(
        "setup",
        help="create the SQS queue, its policy and the bucket's notification (idempotent)",
        description="Create (or update) the SQS queue, its access policy (the bucket may "
        "send) and the bucket's notification of created and removed objects under the "
        "landing prefix; then set JF_EVENTS to the value printed. Safe to run again.",
        epilog="Exit codes: 0 done; 1 AWS refused a step; 2 bad usage.",
    )
    setup.add_argument("landing_uri", help="s3://bucket/prefix, as in JF_LANDING")
    setup.add_argument("--queue", help="the queue's name (default: jf-landing-<bucket>)")
    setup.add_argument("--json", action="store_true", help="print JSON for scripts")


def events_setup(landing_uri: str, queue: str | None, as_json: bool) -> int:
    """`jf events setup`: see `jf_pipeline.events.setup`."""
    import re

    from jf_pipeline import events
    from jf_pipeline.resources import _split_s3_uri, s3_from_env

    if not landing_uri.startswith("s3://"):
        print("jf events setup needs an S3 landing zone: s3://bucket/prefix", file=sys.stderr)
        return 2
    try:
        bucket, prefix = _split_s3_uri(landing_uri)
    except ValueError as exc:
        print(terminal_safe(str(exc)), file=sys.stderr)
        return 2
    name = queue or re.sub(r"[^A-Za-z0-9_-]", "-", f"jf-landing-{bucket}")[:80]
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name):
        print(f"{terminal_safe(repr(name))} is not an SQS queue name", file=sys.stderr)
        return 2
    s3 = s3_from_env()
    try:
        done = events.setup(bucket, prefix, name, s3.endpoint_url, s3.region_name)
    except Exception as exc:  # botocore's ClientError and its relatives: one line, exit 1
        print(f"jf events setup failed: {terminal_safe(one_line(exc))}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(done, indent=1))
    else:
        print(f"queue        {done['queue_url']}")
        print(f"notification s3://{bucket}/{done['prefix']} created and removed objects")
        print(f"now set      JF_EVENTS={done['events']}")
    return 0


def _format_table(rows: list[dict]) -> str:
    header = [title for title, _ in SUMMARY_COLUMNS]
    body = [
        ["" if row.get(key) is None else str(row.get(key)) for _, key in SUMMARY_COLUMNS]
        for row in rows
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=False)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)).rstrip()
        for line in [header, *body]
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def ingest(
    landing_uri: str | None,
    warehouse_path: str | None,
    named: list[str],
    everything: bool,
    approve: bool = False,
    as_json: bool = False,
) -> int:
    # The same steps as the ingest job's run, called directly: no Dagster import, instance,
    # event log or run (most of a small tenant's time, issue 17); status, rejects and sql
    # do not even import the pipeline.
    from jf_pipeline.resources import landing_store_from_uri, warehouse_from_path

    landing = landing_store_from_uri(landing_uri)
    warehouse = warehouse_from_path(warehouse_path)
    if wh.repair_snapshot(warehouse.path, warehouse.lock_timeout_seconds):
        print(
            "the analysts' snapshot was behind the last publish: brought up to date",
            file=sys.stderr,
        )
    found = survey(landing.list_files())
    for name in found.invalid_tenants:
        print(
            f"skipped landing folder {terminal_safe(repr(name))}: not a valid tenant id",
            file=sys.stderr,
        )
    for name, why in found.refused_tenants.items():
        print(f"skipped landing folder {terminal_safe(repr(name))}: {why}", file=sys.stderr)
    failed = False
    versions, held = _tenant_settings(landing, found)
    for tenant, why in sorted(held.items()):
        if tenant in named or not named:
            print(f"{tenant}: not ingested: {terminal_safe(why)}", file=sys.stderr)
        failed = failed or tenant in named
    by_name, named = bool(named), [t for t in named if t not in held]
    if by_name:
        selected = []
        for tenant in named:
            if not is_valid_tenant_id(tenant) or tenant not in found.tenants:
                print(
                    f"no landing folder for tenant {terminal_safe(repr(tenant))} "
                    f"in {landing.describe()}",
                    file=sys.stderr,
                )
                failed = True
            elif tenant not in selected:
                selected.append(tenant)
    else:
        latest = {
            row["tenant_id"]: row
            for row in wh.last_ingestions(warehouse.path).iter_rows(named=True)
        }
        selected = []
        for tenant, files in sorted(found.tenants.items()):
            last = latest.get(tenant) or {}
            unchanged = (
                files
                and last.get("landing_version") == file_versions(files)
                and int(last.get("settings_version") or 0) == versions.get(tenant, 0)
            )
            if unchanged and last.get("outcome") == "refused" and not everything:
                # The same drop would be refused again: say so, and fail, until approved.
                print(
                    f"{tenant}: still refused by the publish guard: "
                    f"{terminal_safe(last.get('reason') or 'see jf rejects ' + tenant)} "
                    f"(if the drop is real: jf approve {tenant}, or without Dagster: "
                    f"jf ingest --tenant {tenant} --approve)",
                    file=sys.stderr,
                )
                failed = True
            elif files and (everything or not unchanged or last.get("outcome") == "failed"):
                selected.append(tenant)
    if not selected:
        message = (
            f"nothing to ingest: no tenant in {landing.describe()} changed since its last ingestion"
        )
        print("[]" if as_json else message)
        return 1 if failed else 0

    log = _StderrLog()
    rows = []
    with _Interrupts() as interrupted:
        for index, tenant in enumerate(selected, 1):
            busy = False
            try:
                row, succeeded, busy = _ingest_one(
                    landing,
                    warehouse,
                    found,
                    tenant,
                    approve,
                    log,
                    (index, len(selected)),
                    interrupted,
                )
            except KeyboardInterrupt:
                interrupted.append(True)
            if interrupted:
                left = len(selected) - index
                print(
                    f"\ninterrupted (Ctrl-C) during {tenant}: the warehouse holds its previous "
                    f"rows or the whole new drop (one transaction); {left} more tenant(s) not "
                    "ingested",
                    file=sys.stderr,
                )
                return 130
            rows.append(row)
            failed = failed or not succeeded
            if busy and index < len(selected):  # each would wait as long again
                print(
                    f"stopped: {len(selected) - index} more tenant(s) not ingested while "
                    "the warehouse is busy; run jf ingest again when the other writer is done",
                    file=sys.stderr,
                )
                break
    if as_json:
        print(json.dumps(rows, default=str, indent=1))
    else:
        print(_format_table(rows))
    return 1 if failed else 0


class _Interrupts(list):
    """Ctrl-C during `jf ingest`: remembered, then raised as usual. DuckDB turns an
    interrupt during a query into an ordinary error (`Query interrupted`), which the steps
    report as the tenant's failure like any other; the flag tells the loop to stop there
    instead of going on with the next tenant. Only in the main thread (signal handlers)."""

    def __enter__(self):
        self._previous = None
        # Not in a thread, and not where Ctrl-C is ignored on purpose (nohup, `&` in a script).
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:

            def on_interrupt(signum, frame):
                self.append(signum)
                signal.default_int_handler(signum, frame)

            self._previous = signal.signal(signal.SIGINT, on_interrupt)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _ingest_one(
    landing, warehouse, found, tenant, approve, log, progress, interrupted
) -> tuple[dict, bool, bool]:
    """One tenant's ingestion by `jf ingest`, with its progress and failure lines on stderr;
    returns its `ingestions` row (outcome `failed` when it failed before a publish), whether
    it succeeded (published, or in part, and not refused), and whether it gave up waiting
    for another writer."""
    from jf_pipeline import steps

    started = time.monotonic()
    print(f"[{progress[0]}/{progress[1]}] {tenant} ...", end="", file=sys.stderr, flush=True)
    result = steps.ingest_tenant(
        landing,
        warehouse,
        tenant,
        log,
        approved_by=f"{_user()} (jf ingest --approve)" if approve else None,
        approved_version=file_versions(found.tenants[tenant]) if approve else "",
    )
    if interrupted and result.error:  # DuckDB's "Query interrupted": say what happened
        result.error = "interrupted (Ctrl-C) during jf ingest: its publish was rolled back"
    if result.busy:  # another writer still holds the warehouse: it cannot log the failure
        done = pl.DataFrame()
        result.error = (
            f"{result.error} (not logged as failed while the warehouse is busy; "
            "the next jf ingest retries it)"
        )
    else:
        done = wh.last_ingestions(warehouse.path).filter(
            (pl.col("tenant_id") == tenant) & (pl.col("run_id") == result.run_id)
        )
    if not done.height and not result.busy:  # it failed before it could log an attempt
        try:
            wh.record_failure(
                warehouse.path,
                tenant,
                result.run_id,
                file_versions(found.tenants[tenant]),
                result.error or "the run failed before publishing",
                timeout=warehouse.lock_timeout_seconds,
            )
        except wh.WarehouseBusy as exc:  # the others would wait as long again
            print(f"  could not log the failure: {terminal_safe(exc)}", file=sys.stderr)
            result.busy = True
        except (duckdb.Error, OSError) as exc:  # the warehouse itself may be the fault
            print(f"  could not log the failure: {terminal_safe(exc)}", file=sys.stderr)
    row = done.row(0, named=True) if done.height else {"tenant_id": tenant, "outcome": "failed"}
    seconds = time.monotonic() - started
    print(f" {row['outcome']} in {seconds:.1f}s", file=sys.stderr)
    log.flush()
    if result.success:
        return row, True, False
    for check in result.failed_checks:
        print(f"  {tenant} {check.name}: {terminal_safe(check.description)}", file=sys.stderr)
    if result.error and row["outcome"] == "failed":
        print(f"  {tenant} {terminal_safe(result.error)}", file=sys.stderr)
    return row, False, result.busy


def _tenant_settings(landing, found) -> tuple[dict[str, int], dict[str, str]]:
    """tenant -> settings version, and the tenants held back (paused, removed, unreadable
    settings) -> why; held-back tenants are taken out of `found`."""
    from jf_pipeline import tenants
    from jf_pipeline.core.tenant_settings import ACTIVE

    stored, broken = tenants.load_all(landing)
    held = {t: f"its settings cannot be read: {why}" for t, why in broken.items()}
    held.update(
        {
            t: f"tenant {own.status} (jf tenant show {t})"
            for t, own in stored.items()
            if own.status != ACTIVE
        }
    )
    for tenant in held:
        found.tenants.pop(tenant, None)
    return {t: own.settings_version for t, own in stored.items()}, held


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


class _StderrLog:
    """`jf ingest`'s log for the steps: warnings (a report that could not be written, an
    approval that did not apply) are printed after the tenant's line; info is dropped."""

    def __init__(self):
        self.held: list[str] = []

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self.held.append(msg)

    def flush(self) -> None:
        for msg in self.held:
            print(f"  warning: {terminal_safe(msg)}", file=sys.stderr)
        self.held.clear()


def _emit(frame: pl.DataFrame, as_json: bool, limit: int = MAX_CELL_CHARS) -> None:
    if as_json:
        print(json.dumps(frame.to_dicts(), default=str, indent=1))
        return
    # One line per row (a wrapped cell would split a row over several lines), cells cut.
    text = frame.with_columns(
        pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S")
        for c, dtype in frame.schema.items()
        if dtype.is_temporal() and dtype != pl.Duration
    )
    result = wh.QueryResult(
        columns=frame.columns,
        types=["BIGINT" if dtype.is_numeric() else "VARCHAR" for dtype in frame.dtypes],
        rows=[tuple(None if v is None else str(v) for v in row) for row in text.iter_rows()],
    )
    print(format_rows(result, limit))


def status(warehouse_path: str | None, as_json: bool) -> int:
    frame = wh.tenant_status(_warehouse_path(warehouse_path))
    frame = _with_changes(frame, wh.last_changes(_warehouse_path(warehouse_path)))
    if as_json:
        frame = frame.drop("deal_changes")
    if not as_json:
        refused = ["refused_deals", "refused_accounts", "refused_contacts"]
        frame = frame.with_columns(
            pl.col("published_age_s").map_elements(_age, return_dtype=pl.String).alias("age"),
            pl.when(pl.col("outcome") == "refused")
            .then(
                pl.concat_str(
                    [
                        pl.lit(f"{c.removeprefix('refused_')} ")
                        + pl.col(c).cast(pl.String).fill_null("?")
                        for c in refused
                    ],
                    separator=", ",
                )
            )
            .alias("refused_drop"),
        ).drop("published_age_s", *refused, "deals_new", "deals_changed", "deals_gone")
        frame = frame.select(*[c for c in frame.columns if c != "reason"], "reason")
    _emit(frame, as_json, limit=STATUS_CELL_CHARS)
    return 0


def _with_changes(frame: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """Status rows with the deals the last publish made new, changed and gone (as
    `deal_changes`, "3 new, 5 changed, 1 gone", in the text output)."""
    frame = frame.join(changes, on="tenant_id", how="left")
    return frame.with_columns(
        pl.when(pl.col("deals_new").is_not_null())
        .then(
            pl.format(
                "{} new, {} changed, {} gone",
                pl.col("deals_new"),
                pl.col("deals_changed"),
                pl.col("deals_gone"),
            )
        )
        .alias("deal_changes")
    )


def _age(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def rejects(tenant: str, warehouse_path: str | None, as_json: bool) -> int:
    """What to tell the customer: problems grouped by file and reason, with rows and values."""
    path = _warehouse_path(warehouse_path)
    known = wh.known_tenants(path)
    if tenant not in known:
        print(unknown_tenant(tenant, known, path), file=sys.stderr)
        return 1
    problems = wh.tenant_rejects(path, tenant)
    if as_json:
        _emit(problems, True)
        return 0
    latest = wh.last_ingestions(path).filter(pl.col("tenant_id") == tenant)
    tenant = terminal_safe(tenant)
    for line in _outcome_lines(tenant, latest.row(0, named=True) if latest.height else {}):
        print(line)
    if not problems.height:
        print(f"{tenant}: no rejected rows and no warnings in the latest drop")
        return 0
    errors = problems.filter(pl.col("severity") == "error").height
    print(f"{tenant}: {errors} error(s), {problems.height - errors} warning(s) in the latest drop")
    problems = _safe_frame(problems)
    for (file,), in_file in problems.group_by("file", maintain_order=True):
        print(f"\n{file}")
        for (severity, reason), group in in_file.group_by(
            ["severity", "reason"], maintain_order=True
        ):
            rows = group["row_number"].drop_nulls()
            where = f"{len(rows)} row(s)" if len(rows) else "whole file"
            print(f"  {severity:<7} {reason} ({where})")
            for problem in group.head(20).iter_rows(named=True):
                at = (
                    "file"
                    if problem["row_number"] is None
                    else f"row {problem['row_number']}"
                    if problem["line_number"] is None  # published before line numbers existed
                    else f"row {problem['row_number']} (line {problem['line_number']})"
                )
                print(f"    {at}: {problem['message']}")
            if group.height > 20:
                print(f"    ... and {group.height - 20} more (jf rejects {tenant} --json)")
    return 0


def _cell(value: str | None, limit: int = MAX_CELL_CHARS) -> str:
    if value is None:
        return "NULL"
    text = terminal_safe(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_rows(result: wh.QueryResult, limit: int = MAX_CELL_CHARS) -> str:
    """A query's rows as an ASCII table: one line per row, every cell terminal-safe and cut
    to `limit` characters, NULL shown as NULL, numbers right-aligned."""
    header = [_cell(c, limit) for c in result.columns]
    body = [[_cell(v, limit) for v in row] for row in result.rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]
    right = [t.upper().startswith(NUMERIC_TYPES) for t in result.types]

    def line(cells: list[str], numbers: list[bool]) -> str:
        return (
            "| "
            + " | ".join(
                c.rjust(w) if r else c.ljust(w)
                for c, w, r in zip(cells, widths, numbers, strict=True)
            )
            + " |"
        )

    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [rule, line(header, [False] * len(widths)), rule.replace("-", "=")]
    lines += [line(cells, right) for cells in body]
    lines.append(rule)
    lines.append(f"({len(result.rows)} row{'' if len(result.rows) == 1 else 's'})")
    return "\n".join(lines)


def unique_names(names: list[str]) -> list[str]:
    """JSON keys for a query's columns: a repeated name gets `_2`, `_3`... (`SELECT 1 AS a, 2
    AS a` keeps both values)."""
    taken: set[str] = set()
    keys = []
    for name in names:
        key, n = name, 1
        while key in taken:
            n += 1
            key = f"{name}_{n}"
        taken.add(key)
        keys.append(key)
    return keys


def unknown_tenant(tenant: str, known: list[str], where: str) -> str:
    """One line saying `tenant` is not known, with the likeliest names meant."""
    close = difflib.get_close_matches(tenant.lower(), known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(k) for k in close)}?" if close else ""
    return f"unknown tenant {terminal_safe(repr(tenant))}: no ingestion of it in {where}{hint}"


def one_line(exc: BaseException) -> str:
    """An error message on one line (DuckDB's span several: the error, then LINE 1: ...)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def _outcome_lines(tenant: str, ingestion: dict) -> list[str]:
    """What `jf rejects` says first when the latest drop was not published: the refusal or
    failure and its reason (the problems below may not explain it: a fall in counts)."""
    reason = terminal_safe(ingestion.get("reason") or "no reason recorded")
    if ingestion.get("outcome") == "refused":
        return [
            f"{tenant}: REFUSED: the latest drop was not published; "
            "the data published before stays live.",
            f"  reason: {reason}",
            f"  if the drop is real, approve it: jf approve {tenant} "
            f"(without Dagster: jf ingest --tenant {tenant} --approve)",
        ]
    if ingestion.get("outcome") == "failed":
        return [f"{tenant}: FAILED: the latest run failed before publishing: {reason}"]
    return []


def sql(query: str, warehouse_path: str | None, as_json: bool) -> int:
    try:
        result = wh.query_rows(_warehouse_path(warehouse_path), query, as_json=as_json)
    except duckdb.Error as exc:
        print(f"query failed: {terminal_safe(one_line(exc))}", file=sys.stderr)
        return 1
    if as_json:
        keys = unique_names(result.columns)
        print(
            json.dumps(
                [dict(zip(keys, row, strict=True)) for row in result.rows],
                default=str,
                indent=1,
            )
        )
    elif result.columns:
        print(format_rows(result))
    return 0


def approve_command(
    tenant: str,
    landing_uri: str | None,
    warehouse_path: str | None,
    workspace_file: str,
    wait: bool,
    as_json: bool,
    timeout: float = 600.0,
) -> int:
    """`jf approve TENANT`: the tenant's latest attempt must be a refusal, the tenant active
    (not paused or removed), and its files still the refused drop; then an
    approve_tenant run for exactly that drop is submitted to the Dagster instance (the run
    checks the fingerprint again when it reads the files)."""
    path = _warehouse_path(warehouse_path)
    known = wh.known_tenants(path)
    if tenant not in known:
        print(unknown_tenant(tenant, known, path), file=sys.stderr)
        return 1
    shown = terminal_safe(tenant)
    refused = wh.refused_drop(path, tenant)
    if refused is None:
        latest = wh.last_ingestions(path).filter(pl.col("tenant_id") == tenant)
        outcome = latest["outcome"][0] if latest.height else "unknown"
        print(
            f"{shown}: nothing to approve: its latest publish attempt was {outcome}, not "
            "refused by the publish guard",
            file=sys.stderr,
        )
        return 1
    from pathlib import Path

    from jf_pipeline.resources import landing_store_from_uri

    landing = landing_store_from_uri(landing_uri)
    found = survey(landing.list_files())
    _, held = _tenant_settings(landing, found)
    if tenant in held:  # paused, removed, settings unreadable: nothing of it is ingested
        print(f"{shown}: not approved: {terminal_safe(held[tenant])}", file=sys.stderr)
        return 1
    now = file_versions(found.tenants.get(tenant, {}))
    if now != refused["landing_version"]:
        print(
            f"{shown}: not approved: the files changed since the refused drop (refused "
            f"{refused['landing_version']}, now {now}); the new drop gets its own run "
            f"(landing sensor or jf ingest): approve that if it is refused too",
            file=sys.stderr,
        )
        return 1
    home, workspace = Path(setting("DAGSTER_HOME")), Path(workspace_file)
    for what, where, hint in (
        ("Dagster instance", home / "dagster.yaml", "set DAGSTER_HOME (make dev: dagster_home)"),
        ("Dagster workspace", workspace, "pass --workspace (make dev: workspace.yaml)"),
    ):
        if not where.is_file():
            print(f"no {what} at {where}: {hint}", file=sys.stderr)
            return 1
    from dagster import DagsterInstance, DagsterRunStatus

    from jf_pipeline.approval import submit_approval

    with DagsterInstance.from_config(str(home)) as instance:
        run_id = submit_approval(
            instance,
            str(workspace),
            tenant,
            refused["landing_version"],
            f"{_user()} (jf approve)",
        )
        result = {
            "tenant_id": tenant,
            "run_id": run_id,
            "landing_version": refused["landing_version"],
            "refused_run_id": refused["run_id"],
            "refused_at": refused["finished_at"],
            "reason": refused["reason"],
        }
        if not as_json:
            print(
                f"{shown}: submitted approve_tenant run {run_id} for the refused drop "
                f"{refused['landing_version']} ({terminal_safe(refused['reason'] or '')}); "
                f"it shows in the Dagster UI with tag jf/tenant={shown}"
            )
        if not wait:
            if as_json:
                print(json.dumps(result, default=str, indent=1))
            return 0
        deadline = time.monotonic() + timeout
        while True:
            run = instance.get_run_by_id(run_id)
            if run is not None and run.is_finished:
                break
            if time.monotonic() > deadline:
                print(f"{shown}: run {run_id} did not finish in {timeout:.0f} s", file=sys.stderr)
                return 1
            time.sleep(1)
    done = wh.last_ingestions(path).filter(
        (pl.col("tenant_id") == tenant) & (pl.col("run_id") == run_id)
    )
    outcome = done["outcome"][0] if done.height else "failed"
    result["outcome"] = outcome
    if as_json:
        print(json.dumps(result, default=str, indent=1))
    else:
        reason = done["reason"][0] if done.height else None
        approved = bool(done.height and done["approved"][0])
        verdict = f"{outcome}, approved" if approved else outcome
        print(f"{shown}: {verdict}" + (f": {terminal_safe(reason)}" if reason else ""))
    published = run.status == DagsterRunStatus.SUCCESS and outcome in wh.SUCCESS
    return 0 if published else 1


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # as a command: `jf ... | head` should end quietly, as other tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = _parser().parse_args(argv)
    try:
        return _command(args)
    except wh.WarehouseBusy as exc:  # e.g. a long `jf ingest` beside this one
        print(terminal_safe(exc), file=sys.stderr)
        return 1


def _command(args: argparse.Namespace) -> int:
    try:
        if args.command == "status":
            return status(args.warehouse, args.json)
        if args.command == "rejects":
            return rejects(args.tenant_id, args.warehouse, args.json)
        if args.command == "sql":
            return sql(args.query, args.warehouse, args.json)
        if args.command == "history":
            return history_prune(
                args.older_than, args.tenant, args.dry_run, args.warehouse, args.json
            )
    except wh.NoWarehouse as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.command in ("tenant", "check"):
        return onboarding(args)
    if args.command == "approve":
        return approve_command(
            args.tenant_id, args.landing, args.warehouse, args.workspace, args.wait, args.json
        )
    if args.command == "events":
        return events_setup(args.landing_uri, args.queue, args.json)
    if args.command == "ingest":
        if args.approve and not args.tenant:
            print(
                "--approve needs --tenant: approve tenants one by one, deliberately",
                file=sys.stderr,
            )
            return 2
        return ingest(args.landing, args.warehouse, args.tenant, args.all, args.approve, args.json)
    return 2


if __name__ == "__main__":
    sys.exit(main())
