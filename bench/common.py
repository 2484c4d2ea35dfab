"""Shared benchmark machinery: the throwaway cluster, timing, statistics, tables.

The cluster is a :class:`service.embedded.EmbeddedCluster` (ephemeral: a temporary directory,
removed on stop) re-configured with production-like settings through ``ALTER SYSTEM`` and
restarted once (``shared_buffers`` needs a restart). ``SETTINGS`` is what RESULTS.md reports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from service.embedded import EmbeddedCluster
from service.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"

# Production-like settings for a 2-core / 24 GiB machine. Durability is ON (fsync,
# synchronous_commit, full_page_writes): commits wait for the WAL flush as in production.
SETTINGS: dict[str, str] = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "2GB",
    "effective_cache_size": "12GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "512MB",
    "wal_buffers": "64MB",
    "max_wal_size": "16GB",
    "checkpoint_timeout": "30min",
    "max_connections": "100",
    "random_page_cost": "1.1",
    "jit": "off",
}


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


# -- statistics ------------------------------------------------------------------------------------
@dataclass
class Figure:
    """One measured figure over several runs."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, v: float) -> None:
        self.values.append(v)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def min(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def max(self) -> float:
        return max(self.values) if self.values else float("nan")


def fmt(v: float, unit: str = "") -> str:
    if v != v:  # NaN
        return "n/a"
    if unit in ("x", "ratio"):
        return f"{v:.2f}"
    a = abs(v)
    if a >= 1000:
        s = f"{v:,.0f}"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3f}"
    return s


def table(figures: list[Figure]) -> str:
    lines = ["| figure | unit | median | min | max | runs | note |", "|---|---|---:|---:|---:|---:|---|"]
    for f in figures:
        lines.append(
            f"| {f.name} | {f.unit} | {fmt(f.median, f.unit)} | {fmt(f.min, f.unit)} | "
            f"{fmt(f.max, f.unit)} | {len(f.values)} | {f.note} |"
        )
    return "\n".join(lines)


@dataclass
class Target:
    what: str
    figure: Figure
    op: str  # "<=" or ">="
    limit: float

    @property
    def met(self) -> bool:
        v = self.figure.median
        return v <= self.limit if self.op == "<=" else v >= self.limit

    def row(self) -> str:
        return (
            f"| {self.what} | {self.op} {fmt(self.limit, self.figure.unit)} {self.figure.unit} | "
            f"{fmt(self.figure.median, self.figure.unit)} | {'**met**' if self.met else '**missed**'} |"
        )


@dataclass
class Section:
    title: str
    description: str
    figures: list[Figure]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        out = [f"## {self.title}", "", self.description, "", table(self.figures), ""]
        if self.targets:
            out += ["| target | limit | median | verdict |", "|---|---:|---:|---|"]
            out += [t.row() for t in self.targets]
            out.append("")
        out += [n + "\n" for n in self.notes]
        return "\n".join(out)


@contextlib.contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as t: ...; t()`` -> seconds (``t()`` is final after the block)."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


class Deadline:
    """A time budget: benchmarks stop adding runs (never mid-run) once it is spent."""

    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    @property
    def left(self) -> float:
        return self.until - time.monotonic()


# -- process memory --------------------------------------------------------------------------------
def proc_status(pid: int) -> dict[str, int]:
    """kB fields of /proc/<pid>/status (VmHWM, VmRSS, RssAnon, RssShmem ...)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                out[key] = int(parts[0])
    except OSError:
        pass
    return out


def children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += [int(x) for x in (task / "children").read_text().split()]
    except OSError:
        pass
    return kids


class MemorySampler:
    """Samples /proc/<pid>/status of some pids in a thread; keeps the peaks.

    ``pids`` is a callable returning the pids to watch now (they may come and go). Peaks:
    ``VmHWM`` (the kernel's own high-water mark of the resident set, shared memory pages
    touched included) and the sampled peak of ``RssAnon`` (private memory only).
    """

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.05) -> None:
        self._pids = pids
        self.interval = interval
        self.hwm_kb: dict[int, int] = {}
        self.anon_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        try:
            pids = self._pids()
        except Exception:
            return
        for pid in pids:
            st = proc_status(pid)
            if st:
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), st.get("VmHWM", 0))
                self.anon_kb[pid] = max(self.anon_kb.get(pid, 0), st.get("RssAnon", 0))

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# -- the cluster -----------------------------------------------------------------------------------
class BenchCluster:
    """An ephemeral cluster with ``SETTINGS``; databases are cloned from templates per run."""

    def __init__(self) -> None:
        self.cluster = EmbeddedCluster(None, dbname="bench", ephemeral=True)
        self._templates: dict[str, str] = {}

    def start(self) -> BenchCluster:
        log("starting the benchmark cluster")
        self.cluster.start()
        with self.admin() as conn:
            for k, v in SETTINGS.items():
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(k), sql.Literal(v)))
        c = self.cluster
        r = c._run(
            [
                c.bindir / "pg_ctl",
                "restart",
                "-w",
                "-t",
                "60",
                "-m",
                "fast",
                "-D",
                c.pgdata,
                "-l",
                c.log_path,
            ],
            timeout=90,
        )
        if r.returncode != 0:
            raise RuntimeError(f"restart failed: {r.stderr}")
        c.wait_ready(30)
        return self

    def stop(self) -> None:
        self.cluster.stop()

    def __enter__(self) -> BenchCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def url(self, dbname: str) -> str:
        return self.cluster.admin_url(dbname)

    def admin(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(dbname), autocommit=True)

    def settings_report(self) -> dict[str, str]:
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
                (list(SETTINGS) + ["server_version"],),
            ).fetchall()
        out = {}
        for name, setting, unit in rows:
            if unit == "8kB":
                setting = f"{int(setting) * 8 // 1024}MB"
            elif unit in ("kB",) and int(setting) >= 1024:
                setting = f"{int(setting) // 1024}MB"
            elif unit:
                setting = f"{setting}{unit}"
            out[name] = setting
        return out

    def drop(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def create(self, name: str, template: str | None = None) -> str:
        """(Re)create database ``name``, empty or as a file copy of ``template``; returns its URL."""
        self.drop(name)
        with self.admin() as conn:
            if template:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
            else:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def template(self, release: str, projects: int, per_project: bool | None = None) -> str:
        """A template database at ``release`` holding ``projects`` projects (built once).

        The projects are bulk loaded at release 6.0 (one org, names ``p0000001`` ...), then, for a
        6.1 template, upgraded with the tunable ``per_project``.
        """
        key = f"tpl_{release.replace('.', '')}_{projects}" + (
            "" if per_project is None else ("_pp" if per_project else "_single")
        )
        if key in self._templates:
            return key
        if release == "6.0" or projects == 0:
            url = self.create(key)
            migrate(url, "6.0")
            with psycopg.connect(url, autocommit=True) as conn:
                if projects:
                    load_projects_60(conn, projects)
                conn.execute("VACUUM ANALYZE")
            if release == "6.1":
                set_mode(url, per_project)
                migrate(url, "6.1")
        else:
            base = self.template("6.0", projects)
            url = self.create(key, template=base)
            set_mode(url, per_project)
            log(f"upgrading template {key} to 6.1")
            migrate(url, "6.1")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
        self._templates[key] = url
        return key


def set_mode(url: str, per_project: bool | None) -> None:
    if per_project is None:
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE config.tunables SET value = %s::jsonb "
            "WHERE name = 'turbine_api_feature_migrate_projects_to_orgs'",
            ("true" if per_project else "false",),
        )


def load_projects_60(conn: psycopg.Connection, n: int) -> None:
    """Bulk load ``n`` projects into the org at release 6.0 (server-side generate_series)."""
    log(f"loading {n:,} projects at 6.0")
    conn.execute(
        """
        INSERT INTO config.projects (org_id, name, description, settings)
        SELECT (SELECT uuid FROM config.orgs ORDER BY created LIMIT 1),
               'p' || lpad(i::text, 7, '0'), 'benchmark project ' || i, '{"ttl_days": 30}'::jsonb
        FROM generate_series(1, %s) i
        """,
        (n,),
    )


def machine() -> dict[str, str]:
    mem_kb = proc_meminfo().get("MemTotal", 0)
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def proc_meminfo() -> dict[str, int]:
    out = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            k, _, rest = line.partition(":")
            out[k] = int(rest.split()[0])
    return out
