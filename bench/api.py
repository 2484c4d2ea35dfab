"""4 and 5. API throughput and latency, the database's own ceiling, and the service's memory.

On a file copy of a 6.1 template holding N projects in per-project mode (so N customers, the
largest customers list), a ``super_admin`` is created with ``service.users.create_user`` and the
service is started as production would: ``uvicorn --factory service.app:create_app`` in a
subprocess (``WORKERS`` worker processes, scheduler off, access log off) on a free loopback
port. A token is obtained from ``POST /config/v1/login``. Then, per endpoint and run, ``wrk``
(a separate process, ``WRK_THREADS`` threads, ``CONCURRENCY`` connections, fixed duration)
drives

* the **orphan audit** ``GET /config/v1/orgs/{org}/projects/?customer_id__isnull=True`` (a
  healthy cluster answers ``[]``), and
* the **customers list**, first page ``GET /config/v1/customers/?page_size=100``.

Beside it, in the same run, **pgbench** runs the same SQL each request runs (the token lookup,
which sets the actor and, for the orphan audit, checks the org; then the list query; no
transaction block, as the service runs reads; prepared statements as psycopg prepares them)
with the same number of connections for the same time: the database's ceiling on this
machine. Also through pgbench, interleaved in the same run: the customers page's statement
alone, today's and the one before issue 14 (``OLD_CUSTOMERS_PAGE``: count(*) over every
visible customer). The round trips to the database per request are counted once, in process
(:func:`round_trips`). The service's peak memory is ``VmHWM`` of the uvicorn processes
(sampled over the whole benchmark).

The **full plain customers list** (``GET /config/v1/customers/``, no paging: what hdxcli asks
for with ``pagination=False``) is timed per run on a fresh one-process uvicorn (no login: the
token is inserted directly, so argon2's memory does not count), from the request to the last
byte, and that process's ``VmHWM`` after it is its peak resident set.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import ROOT, BenchCluster, Figure, MemorySampler, Section, Target, children, log
from service import roles
from service.auth import hash_token
from service.queries import query
from service.users import create_user

WORKERS = 2
CONCURRENCY = 8
WRK_THREADS = 2
EMAIL = "bench@localhost"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, bytes):
        return "'\\x" + v.hex() + "'"
    if isinstance(v, list):  # uuid[] (the user's orgs): an array literal
        return "'{" + ",".join(str(x) for x in v) + "}'"
    return "'" + str(v).replace("'", "''") + "'"


def _bind(sql: str, params: dict[str, Any]) -> str:
    """The named query with its parameters as literals, on one line (pgbench reads lines)."""
    text = re.sub(r"%\((\w+)\)s", lambda m: _literal(params[m.group(1)]), sql)
    text = "\n".join(line.split("--")[0] for line in text.splitlines())
    return " ".join(text.split()).rstrip(";") + ";"


# The customers page's statement as it was before issue 14's request-path changes (main at
# 7f70511): the visibility test through config.customer_visible (a function call per customer:
# PostgreSQL does not inline a function with a subquery) and an exact count(*) over every
# visible customer. Run beside today's statement through pgbench, in the same run: the
# statement's speed-up. (Bench-only text: the service runs sql/queries/customers.sql.)
OLD_CUSTOMERS_PAGE = """
WITH visible AS NOT MATERIALIZED (
    SELECT c.uuid, c.name, c.description, c.origin, c.created, c.modified
    FROM config.customers c
    WHERE config.customer_visible(c.uuid, c.created_by, %(all_orgs)s::boolean, %(user_org)s::uuid, %(user_id)s::uuid)
      AND (%(name)s::text IS NULL OR c.name = %(name)s::text)
      AND (%(origin)s::text IS NULL OR c.origin = %(origin)s::text)
), page AS (
    SELECT * FROM visible v
    ORDER BY v.name, v.uuid
    LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint
)
SELECT c.uuid, c.name, c.description, c.origin,
       ARRAY(SELECT p.uuid FROM config.projects p
             WHERE p.customer_id = c.uuid AND config.org_visible(p.org_id, %(all_orgs)s::boolean, %(user_org)s::uuid)
             ORDER BY p.name, p.uuid) AS projects,
       c.created, c.modified, (SELECT count(*) FROM visible) AS total
FROM page c
ORDER BY c.name, c.uuid
"""  # noqa: E501 (the statement as it was)


def _page_statement_script(user: dict[str, Any], org: str, statement: str) -> str:
    """The customers page's statement alone (first page of 100, a super admin)."""
    scope = {
        "all_orgs": True,
        "user_org": org,
        "user_orgs": [org],
        "write_orgs": [org],
        "user_id": str(user["uuid"]),
    }
    return _bind(statement, {**scope, "name": None, "origin": None, "limit": 100, "offset": 0}) + "\n"


def _pgbench_script(token: str, user: dict[str, Any], org: str, endpoint: str) -> str:
    """The statements one request runs, as the service runs them: both endpoints are reads,
    run without a transaction block (``read_only``), the token lookup setting the actor."""
    scope = {
        "all_orgs": True,
        "user_org": org,
        "user_orgs": [org],
        "write_orgs": [org],
        "user_id": str(user["uuid"]),
    }
    in_org = org if endpoint == "orphans" else None  # the token lookup checks the path's org
    lookup = {"token": token, "org_id": in_org, "local": True}
    lines = [_bind(query("auth.user_for_token"), lookup)]
    if endpoint == "orphans":
        lines.append(
            _bind(
                query("projects.list"),
                {
                    **scope,
                    "org_id": org,
                    "isnull": True,
                    "customer": None,
                    "name": None,
                    "limit": None,
                    "offset": 0,
                },
            )
        )
    else:
        lines.append(
            _bind(query("customers.list"), {**scope, "name": None, "origin": None, "limit": 100, "offset": 0})
        )
    return "\n".join(lines) + "\n"


def _pgbench(bc: BenchCluster, dbname: str, script: str, seconds: float) -> tuple[float, float, float]:
    """(tps, p50 ms, p99 ms) of ``script`` at CONCURRENCY clients for ``seconds``."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-pgbench-"))
    try:
        (tmp / "script.sql").write_text(script)
        c = bc.cluster
        cmd = [
            str(c.bindir / "pgbench"),
            "-n",
            "-h",
            "127.0.0.1",
            "-p",
            str(c.port),
            "-U",
            "postgres",
            "-M",
            "prepared",
            "-c",
            str(CONCURRENCY),
            "-j",
            str(WRK_THREADS),
            "-T",
            str(int(seconds)),
            "-f",
            str(tmp / "script.sql"),
            "-l",
            "--log-prefix",
            str(tmp / "log"),
            dbname,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, cwd=tmp)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench failed: {out.stderr}")
        tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))
        lat = []
        for f in tmp.glob("log*"):
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]) / 1000)
        lat.sort()
        return tps, statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, token: str, seconds: float) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx) from wrk at CONCURRENCY connections."""
    cmd = [
        "wrk",
        "-t",
        str(WRK_THREADS),
        "-c",
        str(CONCURRENCY),
        "-d",
        f"{int(seconds)}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr}")
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        return float(m.group(1)) * _UNIT[m.group(2)]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: .*", text)
    if errors:
        log(f"wrk: {errors.group(0)}")
    return rps, pct("50"), pct("99"), int(bad.group(1)) if bad else 0


class Service:
    """uvicorn serving service.app:create_app in a subprocess (own process group)."""

    def __init__(self, db_url: str, workers: int) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "HIERARCHY_DATABASE_URL": db_url,
            "DATABASE_URL": db_url,
            "HIERARCHY_SCHEDULER": "off",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.serve",
                "--factory",
                "service.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    # every worker must be up: ask a few times over fresh connections
                    if len(self.pids()) >= 1 + (workers if workers > 1 else 0):
                        break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("uvicorn did not answer /health within 60 s")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        return [self.proc.pid, *children(self.proc.pid)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _token(owner_url: str, user: dict[str, Any]) -> str:
    """A bearer token of ``user``, made as the owner (the runtime role cannot insert tokens:
    only a login, service_state.log_in, makes one)."""
    token = secrets.token_urlsafe(32)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        params = {"token_hash": hash_token(token), "user_id": user["uuid"], "ttl": 3600}
        conn.execute(query("cli.create_token"), params)
    return token


def _full_list(url: str, owner_url: str, user: dict[str, Any], expected: int) -> tuple[float, float, float]:
    """(seconds, body MiB, peak VmHWM MiB) of one full plain customers list on a fresh service."""
    token = _token(owner_url, user)
    svc = Service(url, 1)
    try:
        with MemorySampler(svc.pids, interval=0.05) as mem:
            t0 = time.perf_counter()
            with httpx.stream(
                "GET",
                svc.base + "/config/v1/customers/",
                headers={"Authorization": f"Bearer {token}"},
                timeout=120,
            ) as r:
                r.raise_for_status()
                body = b"".join(r.iter_bytes())
            elapsed = time.perf_counter() - t0
    finally:
        svc.stop()
    got = len(json.loads(body))
    if got != expected:
        raise AssertionError(f"full customers list: {got} customers, expected {expected}")
    return elapsed, len(body) / 2**20, max(mem.hwm_kb.values(), default=0) / 1024


def round_trips(
    url: str, owner_url: str, user: dict[str, Any], paths: dict[str, str], repeat: int = 10
) -> dict[str, float]:
    """Round trips to the database per request of each path, in steady state: the app in
    process (Litestar's TestClient), every ``AsyncConnection.wait`` that waits on the server (a
    request sent and its answer read: the pool's check, BEGIN, a statement, COMMIT) counted,
    except those of the pool's sweeper task. Each path is asked ``repeat`` times first (statements
    prepared), then ``repeat`` times counted."""
    import asyncio

    from litestar.testing import TestClient

    from service.app import create_app

    token = _token(owner_url, user)
    counted = [0]
    original = psycopg.AsyncConnection.wait

    def counting(gen: Any) -> Any:
        # a round trip when the operation waits at all (a COMMIT in autocommit returns at once)
        try:
            state = next(gen)
        except StopIteration as done:
            return done.value
        counted[0] += 1
        while True:
            ready = yield state
            try:
                state = gen.send(ready)
            except StopIteration as done:
                return done.value

    async def wait(self: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        task = asyncio.current_task()
        if task is not None and task.get_name() == "pool-sweeper":
            return await original(self, gen, *args, **kwargs)
        return await original(self, counting(gen), *args, **kwargs)

    found = {}
    psycopg.AsyncConnection.wait = wait  # type: ignore[method-assign]
    try:
        with TestClient(create_app(url, run_scheduler=False)) as client:
            headers = {"Authorization": f"Bearer {token}"}
            for name, path in paths.items():
                for _ in range(repeat):
                    client.get(path, headers=headers).raise_for_status()
                counted[0] = 0
                for _ in range(repeat):
                    client.get(path, headers=headers).raise_for_status()
                found[name] = counted[0] / repeat
    finally:
        psycopg.AsyncConnection.wait = original  # type: ignore[method-assign]
    return found


def run(bc: BenchCluster, *, projects: int, runs: int, seconds: float) -> Section:
    tpl = bc.template("6.1", projects, per_project=True)
    dbname = "bench_api"
    owner_url = bc.create(dbname, template=tpl)
    # The service runs as the runtime role (row-level security applies, sql/privileges.sql; the
    # ephemeral cluster trusts loopback); "without RLS" is the same service as the superuser,
    # which bypasses the policies and signs in for the lookup's statement only (service.db).
    url = roles.as_role(owner_url, roles.from_env().app, None)
    password = secrets.token_urlsafe(12)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        org = str(conn.execute("SELECT uuid FROM config.orgs LIMIT 1").fetchone()[0])
        user = create_user(conn, EMAIL, password, org, "super_admin")
    endpoints = {
        "orphans": ("orphan audit", f"/config/v1/orgs/{org}/projects/?customer_id__isnull=True"),
        "customers": ("customers list, first page of 100", "/config/v1/customers/?page_size=100"),
    }
    figs: dict[str, Figure] = {}
    for k, (label, _path) in endpoints.items():
        figs[k + "_rps"] = Figure(f"{label}: service", "req/s")
        figs[k + "_p50"] = Figure(f"{label}: service p50", "ms")
        figs[k + "_p99"] = Figure(f"{label}: service p99", "ms")
        figs[k + "_pg_tps"] = Figure(f"{label}: same SQL via pgbench", "tx/s")
        figs[k + "_pg_p50"] = Figure(f"{label}: pgbench p50", "ms")
        figs[k + "_pg_p99"] = Figure(f"{label}: pgbench p99", "ms")
        figs[k + "_ratio"] = Figure(f"{label}: service / pgbench", "x", note="within one run")
        figs[k + "_norls_rps"] = Figure(f"{label}: service without RLS (superuser)", "req/s")
        figs[k + "_norls_p50"] = Figure(f"{label}: service without RLS p50", "ms")
        figs[k + "_rls_cost"] = Figure(
            f"{label}: RLS / without RLS throughput", "x", note="within one run, interleaved"
        )
    page_new = Figure("customers page statement alone via pgbench (today)", "tx/s")
    page_old = Figure("customers page statement alone via pgbench (before issue 14: count(*))", "tx/s")
    page_speedup = Figure("customers page statement: today / before", "x", note="within one run")
    trips = {k: Figure(f"{v[0]}: round trips to the database per request", "") for k, v in endpoints.items()}
    page_scripts = [
        _page_statement_script(user, org, sql) for sql in (query("customers.list"), OLD_CUSTOMERS_PAGE)
    ]
    rss_master = Figure("uvicorn supervisor peak VmHWM", "MiB")
    rss_worker = Figure("uvicorn worker peak VmHWM (largest worker)", "MiB")
    rss_total = Figure("uvicorn all processes, sum of peak VmHWM", "MiB")
    full_s = Figure(f"full plain customers list ({projects:,}): request to last byte", "s")
    full_mib = Figure("full plain customers list: body", "MiB")
    full_rss = Figure("full plain customers list: service peak VmHWM", "MiB", note="one fresh process")
    try:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            customers = conn.execute("SELECT count(*) FROM config.customers").fetchone()[0]
        for i in range(runs):
            took, mib, peak = _full_list(url, owner_url, user, customers)
            full_s.add(took)
            full_mib.add(mib)
            full_rss.add(peak)
            log(f"api run {i + 1} full customers list: {took:.2f}s {mib:.1f}MiB peak VmHWM {peak:.0f}MiB")
            svc = Service(url, WORKERS)
            try:
                with MemorySampler(svc.pids, interval=0.2) as mem:
                    r = httpx.post(
                        svc.base + "/config/v1/login", json={"email": EMAIL, "password": password}, timeout=10
                    )
                    r.raise_for_status()
                    token = r.json()["auth_token"]["access_token"]
                    for k, (_label, path) in endpoints.items():
                        body = httpx.get(
                            svc.base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30
                        )
                        body.raise_for_status()
                        if k == "orphans":
                            assert body.json() == [], body.text[:200]
                        else:
                            assert len(body.json()["results"]) == 100
                        _wrk(svc.base + path, token, 2)  # warm-up: pools filled, statements prepared
                        rps, p50, p99, bad = _wrk(svc.base + path, token, seconds)
                        if bad:
                            raise RuntimeError(f"{bad} non-2xx answers from {path}")
                        plain = Service(owner_url, WORKERS)  # the same, without row-level security
                        try:
                            _wrk(plain.base + path, token, 2)
                            nrps, np50, _np99, nbad = _wrk(plain.base + path, token, seconds)
                        finally:
                            plain.stop()
                        if nbad:
                            raise RuntimeError(f"{nbad} non-2xx answers from {path} without RLS")
                        figs[k + "_norls_rps"].add(nrps)
                        figs[k + "_norls_p50"].add(np50)
                        figs[k + "_rls_cost"].add(rps / nrps)
                        log(f"api run {i + 1} {k}: without RLS {nrps:.0f} req/s p50 {np50:.2f}ms")
                        tps, pg50, pg99 = _pgbench(bc, dbname, _pgbench_script(token, user, org, k), seconds)
                        figs[k + "_rps"].add(rps)
                        figs[k + "_p50"].add(p50)
                        figs[k + "_p99"].add(p99)
                        figs[k + "_pg_tps"].add(tps)
                        figs[k + "_pg_p50"].add(pg50)
                        figs[k + "_pg_p99"].add(pg99)
                        figs[k + "_ratio"].add(rps / tps)
                        if k == "customers":  # the statement alone, today's and the old one, interleaved
                            now = _pgbench(bc, dbname, page_scripts[0], seconds)[0]
                            before = _pgbench(bc, dbname, page_scripts[1], seconds)[0]
                            page_new.add(now)
                            page_old.add(before)
                            page_speedup.add(now / before)
                            log(f"api run {i + 1} page statement: {now:.0f} tx/s, before {before:.0f} tx/s")
                        log(
                            f"api run {i + 1} {k}: {rps:.0f} req/s p50 {p50:.2f}ms p99 {p99:.2f}ms | "
                            f"pgbench {tps:.0f} tx/s p50 {pg50:.2f}ms p99 {pg99:.2f}ms"
                        )
            finally:
                svc.stop()
            hwm = mem.hwm_kb
            master = hwm.get(svc.proc.pid, 0)
            workers = [v for p, v in hwm.items() if p != svc.proc.pid]
            rss_master.add(master / 1024)
            rss_worker.add(max(workers, default=0) / 1024)
            rss_total.add(sum(hwm.values()) / 1024)
        paths = {k: path for k, (_label, path) in endpoints.items()}
        for k, n in round_trips(url, owner_url, user, paths).items():
            trips[k].add(n)
    finally:
        bc.drop(dbname)
    order = []
    for k in endpoints:
        order += [
            figs[k + s]
            for s in (
                "_rps",
                "_p50",
                "_p99",
                "_pg_tps",
                "_pg_p50",
                "_pg_p99",
                "_ratio",
                "_norls_rps",
                "_norls_p50",
                "_rls_cost",
            )
        ]
        order.append(trips[k])
    order += [page_new, page_old, page_speedup]
    section = Section(
        f"4. API ({projects:,} projects, per-project mode: {projects:,} customers)",
        f"uvicorn (`bench/serve.py`: TCP_NODELAY on) with {WORKERS} worker processes on loopback, "
        f"driven by wrk ({WRK_THREADS} threads, {CONCURRENCY} connections, "
        f"{int(seconds)} s per run after a 2 s warm-up); pgbench with {CONCURRENCY} clients, "
        f"{WRK_THREADS} threads, same duration, `-M prepared`. Load generator, service "
        "and database share the machine's cores.",
        order,
    )
    for k, (label, _path) in endpoints.items():
        section.targets.append(Target(f"{label}: throughput", figs[k + "_rps"], ">=", 2500))
        section.targets.append(Target(f"{label}: p99", figs[k + "_p99"], "<=", 15))
    section.targets.append(Target("orphan audit: service / pgbench", figs["orphans_ratio"], ">=", 0.35))
    for k, (label, _path) in endpoints.items():  # issue 23: RLS costs at most 10 %
        section.targets.append(Target(f"{label}: RLS / without RLS", figs[k + "_rls_cost"], ">=", 0.9))
    section.targets.append(
        Target("customers list, first page of 100: service / pgbench", figs["customers_ratio"], ">=", 0.6)
    )
    section.targets.append(Target("customers page statement: today / before issue 14", page_speedup, ">=", 4))
    section.targets.append(Target("full plain customers list: time", full_s, "<=", 1.0))
    section.targets.append(Target("full plain customers list: service peak VmHWM", full_rss, "<=", 100))
    mem_section = Section(
        "5. Service memory under the API load",
        "VmHWM (kernel high-water mark of the resident set) of each uvicorn process, sampled every 0.2 s "
        "over a whole API run (login, warm-ups, both endpoints).",
        [rss_master, rss_worker, rss_total, full_s, full_mib, full_rss],
    )
    section.extra = mem_section  # type: ignore[attr-defined]
    return section


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)
