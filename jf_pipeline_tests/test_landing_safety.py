"""Reading a local landing zone safely: customers' folders are untrusted input.

Protects (issue items 3, 4, 5 and the look-alike file names of 9):
- links are never followed: a tenant folder or contract file that is a symbolic link is
  refused with a reason, so nothing outside the tenant's own folder is ever read or
  published, and a link planted at a report's name is replaced, never written through;
- only regular files are opened: a FIFO named contacts.csv neither hangs `jf ingest` nor
  the sensor;
- a file rewritten in place while it is read publishes one whole version (never a cut
  file) and the hash of exactly what was published; a sensor-requested run publishes the
  version the sensor recorded;
- sizes are checked before reading; the sensor never reads junk files and re-hashes a
  contract file only when it changed;
- `Deals.csv`, `deals.csv ` and the like are reported to the customer, never silently
  ignored.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from dagster import materialize, mem_io_manager

from jf_pipeline import resources
from jf_pipeline.core.landing import file_versions, survey
from jf_pipeline.core.report import REPORT_CSV, REPORT_SUMMARY
from jf_pipeline.definitions import all_assets, build_resources
from jf_pipeline.resources import LocalLandingStore, Warehouse, landing_store_from_uri
from jf_pipeline_tests.conftest import PROJECT, query, run_tenant
from jf_pipeline_tests.test_sensor import Ticker

pytestmark = pytest.mark.integration

HEADER = (
    "Name,target_close_date,owner_email,value,deal_unique_id,account_unique_id,account_name,"
    "account_url,description\n"
)


def deals_csv(rows: int, prefix: str = "D") -> bytes:
    """A deals file of `rows` distinct deals (accented names, so a cut is visible)."""
    body = "".join(
        f"Déal {i},2026-{1 + i % 12:02d}-{1 + i % 28:02d},o{i}@acme.example,{100 + i},"
        f"{prefix}{i:05d},A{i % 50},Acmé {i % 50},acme{i % 50}.example,note {i}\n"
        for i in range(rows)
    )
    return (HEADER + body).encode()


def deal_count(warehouse_path: str, tenant: str) -> int:
    return query(
        warehouse_path, "SELECT count(*) FROM importable_deals WHERE tenant_id = ?", [tenant]
    )[0][0]


def problems(warehouse_path: str, tenant: str) -> list[tuple]:
    return query(
        warehouse_path,
        "SELECT file, reason, value, message FROM rejected_rows WHERE tenant_id = ? ORDER BY ALL",
        [tenant],
    )


def last_outcome(warehouse_path: str, tenant: str) -> str:
    return query(
        warehouse_path,
        "SELECT outcome FROM ingestions WHERE tenant_id = ? ORDER BY finished_at DESC LIMIT 1",
        [tenant],
    )[0][0]


# --- item 3: symbolic links and special files ------------------------------------------


def test_a_tenant_folder_linked_outside_the_root_is_never_read(
    landing_of, warehouse_path, tmp_path, capsys
):
    from jf_pipeline.cli import main

    landing_root = landing_of("globex")

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "deals.csv").write_bytes(deals_csv(5, prefix="OUT"))
    (landing_root / "evil").symlink_to(outside, target_is_directory=True)

    found = survey(LocalLandingStore(root=str(landing_root)).list_files())
    assert "evil" not in found.tenants and "symbolic link" in found.refused_tenants["evil"]
    obj = LocalLandingStore(root=str(landing_root)).read("evil", "deals.csv")
    assert obj.data is None and obj.problem[0] == "file_not_regular"

    code = main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path])
    assert code == 0  # the real tenant was published
    assert "skipped landing folder 'evil'" in capsys.readouterr().err
    rows = query(warehouse_path, "SELECT count(*) FROM ingestions WHERE tenant_id = 'evil'")
    assert rows == [(0,)]
    leaked = "SELECT count(*) FROM importable_deals WHERE deal_unique_id LIKE 'OUT%'"
    assert query(warehouse_path, leaked) == [(0,)]
    assert not (outside / REPORT_CSV).exists()  # nothing written outside the root either


@pytest.mark.parametrize("target", ["/etc/passwd", "victim", "hard link to victim"])
def test_a_contract_file_that_is_a_link_is_refused_and_its_target_never_read(
    target, landing_root, warehouse_path, instance
):
    """deals.csv -> /etc/passwd, and attacker/deals.csv -> ../victim/deals.csv: the link is
    refused (file_not_regular), the tenant's published rows stay, and nothing of the
    target reaches the warehouse or the customer's report."""
    (landing_root / "victim").mkdir()
    (landing_root / "victim" / "deals.csv").write_bytes(deals_csv(20, prefix="VICTIM"))
    attacker = landing_root / "attacker"
    attacker.mkdir()
    (attacker / "deals.csv").write_bytes(deals_csv(10, prefix="ATT"))
    assert run_tenant("attacker", landing_root, warehouse_path, instance).success
    assert deal_count(warehouse_path, "attacker") == 10

    (attacker / "deals.csv").unlink()
    if target.startswith("hard link"):  # found by an outside attack: nlink was not checked
        os.link(landing_root / "victim" / "deals.csv", attacker / "deals.csv")
    else:
        link = "../victim/deals.csv" if target == "victim" else target
        (attacker / "deals.csv").symlink_to(link)
    assert not run_tenant("attacker", landing_root, warehouse_path, instance).success

    assert last_outcome(warehouse_path, "attacker") == "refused"
    assert deal_count(warehouse_path, "attacker") == 10  # the last good data stays
    found = problems(warehouse_path, "attacker")
    assert [(f, r) for f, r, _, _ in found] == [("deals.csv", "file_not_regular")]
    kind = "hard link" if target.startswith("hard link") else "symbolic link"
    assert kind in found[0][3] and "not read" in found[0][3]
    everything = str(query(warehouse_path, "SELECT * FROM rejected_rows")) + str(
        query(warehouse_path, "SELECT * FROM importable_deals WHERE tenant_id = 'attacker'")
    )
    report = (attacker / REPORT_CSV).read_text()
    for secret in ("root:", "VICTIM"):
        assert secret not in everything and secret not in report


def test_links_planted_at_report_names_are_replaced_not_written_through(
    landing_root, warehouse_path, instance, tmp_path
):
    """A pre-planted `.jointflows_import_report.csv.tmp` (or a final report name) linking to
    another file must not make the report writer overwrite that file."""
    precious = tmp_path / "stand-in-for-the-build-file.duckdb"
    precious.write_bytes(b"precious bytes")
    other = tmp_path / "other.txt"
    other.write_bytes(b"other bytes")
    folder = landing_root / "initech"
    (folder / f".{REPORT_CSV}.tmp").symlink_to(precious)
    (folder / REPORT_SUMMARY).symlink_to(other)

    assert run_tenant("initech", landing_root, warehouse_path, instance).success

    assert precious.read_bytes() == b"precious bytes"
    assert other.read_bytes() == b"other bytes"
    for name in (REPORT_CSV, REPORT_SUMMARY):
        assert not (folder / name).is_symlink() and (folder / name).is_file()
    assert "Deals imported: 15" in (folder / REPORT_SUMMARY).read_text()
    assert "row_number" in (folder / REPORT_CSV).read_text(encoding="utf-8-sig")
    assert not (folder / f".{REPORT_CSV}.tmp").exists()


def test_a_fifo_named_contacts_csv_neither_hangs_jf_ingest_nor_the_sensor(
    landing_root, warehouse_path, persistent_instance, monkeypatch
):
    contacts = landing_root / "acme" / "contacts.csv"
    contacts.unlink()
    os.mkfifo(contacts)

    # The sensor lists and fingerprints it without opening it.
    requested = Ticker(persistent_instance, landing_root).tick().run_requests
    assert "acme" in [r.partition_key for r in requested]

    # `jf ingest` refuses it with a reason and exits (a hang is a TimeoutExpired here).
    env = {**os.environ, "DAGSTER_HOME": str(Path(warehouse_path).parent)}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "jf"),
            "ingest",
            "--landing",
            str(landing_root),
            "--warehouse",
            warehouse_path,
            "--tenant",
            "acme",
        ],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr  # refused: a file was rejected as a whole
    assert "contacts.csv" in done.stderr and "refused" in done.stderr
    found = problems(warehouse_path, "acme")
    assert ("contacts.csv", "file_not_regular") in [(f, r) for f, r, _, _ in found]
    message = next(m for f, r, _, m in found if r == "file_not_regular")
    assert "named pipe" in message


# --- item 4: files rewritten in place while they are read -----------------------------


def _rewrite_in_place(path: Path, data: bytes, chunk: int = 4096, pause: float = 0.001) -> None:
    """Rewrite a file the way an exporter writing in place does: truncate, then chunks."""
    with open(path, "r+b") as f:
        f.truncate(0)
        for start in range(0, len(data), chunk):
            f.write(data[start : start + chunk])
            f.flush()
            time.sleep(pause)


def test_a_read_during_in_place_rewrites_returns_one_whole_version_and_its_hash(landing_root):
    path = landing_root / "acme" / "deals.csv"
    first, second = deals_csv(1_754), deals_csv(2_000, prefix="N")
    path.write_bytes(first)
    stop = threading.Event()

    def writer():
        versions = [second, first]
        i = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            _rewrite_in_place(path, versions[i % 2])
            i += 1
        _rewrite_in_place(path, first)
        stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    store = LocalLandingStore(root=str(landing_root))
    reads = []
    try:
        time.sleep(0.05)
        while not stop.is_set():
            reads.append(store.read("acme", "deals.csv"))
    finally:
        thread.join()
    assert reads
    for obj in reads:
        assert obj.data in (first, second), f"a cut file of {len(obj.data)} bytes was read"
        assert obj.file.version == hashlib.sha256(obj.data).hexdigest()
        assert obj.file.size == len(obj.data)
        assert obj.problem is None


def test_a_file_that_never_stops_changing_is_rejected_not_published_cut(landing_root, monkeypatch):
    monkeypatch.setattr(resources, "STABLE_TIMEOUT_SECONDS", 0.5)
    path = landing_root / "acme" / "deals.csv"
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            _rewrite_in_place(path, deals_csv(500))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.05)
        obj = LocalLandingStore(root=str(landing_root)).read("acme", "deals.csv")
    finally:
        stop.set()
        thread.join()
    assert obj.data is None
    assert obj.problem[0] == "file_changing" and "kept changing" in obj.problem[1]


_REEXPORT: dict[str, object] = {}


class ReexportingStore(LocalLandingStore):
    """The customer re-exports deals.csv in place just as the run starts reading it: the
    first read finds a third of the bytes, the writer pausing mid-file (longer than the
    store's quiet window) before it writes the rest."""

    def read(self, tenant, name):
        if name == "deals.csv" and "thread" not in _REEXPORT:
            path, export = _REEXPORT["path"], _REEXPORT["export"]
            f = open(path, "r+b")  # noqa: SIM115 - closed by the writer thread
            f.truncate(0)
            f.write(export[: len(export) // 3])
            f.flush()

            def finish():
                time.sleep(0.8)
                f.write(export[len(export) // 3 :])
                f.close()

            _REEXPORT["thread"] = threading.Thread(target=finish)
            _REEXPORT["thread"].start()
        return super().read(tenant, name)


def test_a_sensor_requested_run_publishes_the_version_the_sensor_recorded(
    landing_root, warehouse_path, persistent_instance, monkeypatch
):
    """The daemon case: the sensor records version E; while the run reads, the customer
    re-exports identical bytes in place, pausing mid-file. The run must not publish the
    cut bytes (the final bytes equal the cursor, so no new run would ever come): the read
    fails, is retried, and the run publishes all of E with E's hash."""
    folder = landing_root / "lateco"
    folder.mkdir()
    path = folder / "deals.csv"
    export = deals_csv(5_000)
    path.write_bytes(export)
    ticker = Ticker(persistent_instance, landing_root)
    request = next(r for r in ticker.tick().run_requests if r.partition_key == "lateco")

    _REEXPORT.clear()
    _REEXPORT.update(path=path, export=export)
    try:
        result = materialize(
            all_assets,
            selection=request.asset_selection,
            partition_key="lateco",
            instance=persistent_instance,
            resources=build_resources(
                ReexportingStore(root=str(landing_root)),
                Warehouse(path=warehouse_path),
                mem_io_manager,
            ),
            tags=request.tags,
            raise_on_error=False,
        )
    finally:
        _REEXPORT["thread"].join()
    assert result.success
    assert deal_count(warehouse_path, "lateco") == 5_000
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries, "the cut read was not noticed"
    version, landing_version = query(
        warehouse_path,
        "SELECT deals_version, landing_version FROM ingestions WHERE tenant_id = 'lateco'",
    )[0]
    assert version == hashlib.sha256(export).hexdigest()
    assert landing_version == request.tags["jf/files"]  # the cursor and the publish agree


# --- item 5: sizes before reading; the sensor reads only what it must ------------------


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


def test_a_file_over_the_size_limit_is_rejected_without_reading_it(
    landing_root, warehouse_path, instance, monkeypatch
):
    assert run_tenant("acme", landing_root, warehouse_path, instance).success
    published = deal_count(warehouse_path, "acme")
    monkeypatch.setenv("JF_MAX_FILE_MB", "8")  # the setting, through the resource wiring
    store = landing_store_from_uri(str(landing_root))
    _sparse(landing_root / "acme" / "deals.csv", 256 * 2**20)

    tracemalloc.start()
    try:
        obj = store.read("acme", "deals.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert obj.data is None and obj.problem[0] == "file_too_large"
    assert "256 MB" in obj.problem[1] and "JF_MAX_FILE_MB" in obj.problem[1]
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MB allocated: the body was read"

    assert not run_tenant("acme", store, warehouse_path, instance).success
    assert last_outcome(warehouse_path, "acme") == "refused"
    assert deal_count(warehouse_path, "acme") == published
    assert [(f, r) for f, r, _, _ in problems(warehouse_path, "acme")] == [
        ("deals.csv", "file_too_large")
    ]


@pytest.fixture
def bytes_read(monkeypatch):
    """Counts the bytes read through os.read (the store's only way to read a file)."""
    counter = {"bytes": 0}
    real_read = os.read

    def counting_read(fd, n):
        data = real_read(fd, n)
        counter["bytes"] += len(data)
        return data

    monkeypatch.setattr(os, "read", counting_read)
    return counter


def test_the_sensor_never_reads_junk_and_rehashes_only_changed_contract_files(
    landing_root, persistent_instance, monkeypatch, bytes_read
):
    deals = landing_root / "acme" / "deals.csv"
    original = deals.read_bytes()
    deals.write_bytes(original + b" " * (32 * 2**20))  # a 32 MB contract file
    _sparse(landing_root / "acme" / "backup-2026.zip", 512 * 2**20)  # junk, 512 MB
    os.mkfifo(landing_root / "acme" / "notes.csv")  # junk that would block if opened
    ticker = Ticker(persistent_instance, landing_root)

    tracemalloc.start()
    try:
        first = ticker.tick()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MB allocated in one tick: junk was read"
    assert "acme" in [r.partition_key for r in first.run_requests]
    assert 32 * 2**20 <= bytes_read["bytes"] < 40 * 2**20  # the contract files only

    bytes_read["bytes"] = 0
    assert ticker.tick().run_requests == []
    assert bytes_read["bytes"] < 2**20  # nothing changed: nothing re-hashed

    stat = deals.stat()
    deals.write_bytes(deals.read_bytes())  # same bytes, written again
    os.utime(deals, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime
    bytes_read["bytes"] = 0
    assert ticker.tick().run_requests == []  # same content: no run
    assert bytes_read["bytes"] >= 32 * 2**20  # but it was hashed again, not trusted


# --- item 9: look-alike names are reported to the customer -----------------------------


@pytest.mark.parametrize("name", ["Deals.csv", "deals.csv ", "DEALS.CSV", "deals.CSV"])
def test_a_look_alike_deals_file_is_reported_to_the_customer(
    name, landing_root, warehouse_path, persistent_instance, monkeypatch
):
    folder = landing_root / "newco"
    folder.mkdir()
    (folder / name).write_bytes(deals_csv(3))
    ticker = Ticker(persistent_instance, landing_root)
    assert "newco" in [r.partition_key for r in ticker.tick().run_requests]

    assert not run_tenant("newco", landing_root, warehouse_path, persistent_instance).success
    found = {r: (f, v, m) for f, r, v, m in problems(warehouse_path, "newco")}
    assert set(found) == {"file_missing", "ignored_file"}
    file, value, message = found["ignored_file"]
    assert file == "deals.csv" and value == name
    assert message.startswith(f"{name!r} was ignored: the file must be named exactly deals.csv")
    assert repr(name) in (folder / REPORT_CSV).read_text(encoding="utf-8-sig")
    assert deal_count(warehouse_path, "newco") == 0  # never guessed


def test_a_look_alike_next_to_the_real_file_is_reported_and_the_real_one_published(
    landing_root, warehouse_path, persistent_instance, monkeypatch
):
    ticker = Ticker(persistent_instance, landing_root)
    ticker.tick()
    assert run_tenant("initech", landing_root, warehouse_path, persistent_instance).success
    before = file_versions(
        survey(LocalLandingStore(root=str(landing_root)).list_files()).tenants["initech"]
    )

    (landing_root / "initech" / "Contacts.csv").write_bytes(b"first_name\nx\n")
    requests = ticker.tick().run_requests  # a new look-alike is news for the customer
    assert [(r.partition_key, r.tags["jf/changed"]) for r in requests] == [
        ("initech", "contacts.csv")
    ]
    assert requests[0].tags["jf/files"] != before

    assert run_tenant("initech", landing_root, warehouse_path, persistent_instance).success
    assert deal_count(warehouse_path, "initech") == 15
    ignored = [(f, v) for f, r, v, _ in problems(warehouse_path, "initech") if r == "ignored_file"]
    assert ignored == [("contacts.csv", "Contacts.csv")]
    landing_version = query(
        warehouse_path,
        "SELECT landing_version FROM ingestions WHERE tenant_id = 'initech' "
        "ORDER BY finished_at DESC LIMIT 1",
    )[0][0]
    assert landing_version == requests[0].tags["jf/files"]
