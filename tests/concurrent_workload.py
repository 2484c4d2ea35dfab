"""The seeded concurrent workload of the invariant tests, and the rules checked after it.

Shared by tests/api/test_concurrent_invariants.py (the in-process app on one database) and
tests/cluster/test_failover_under_load.py (a ``hierarchy run`` process on a Patroni cluster
whose leader is killed midway).

API writers (through ``send``: the in-process client or an HTTP client of a service process)
and plain SQL sessions at once create, rename, move and delete projects, create, rename and
delete customers of every origin, run the job, switch the mode now and then and change the
grace period midway. Every write the database acknowledged (a 2xx answer, a committed
statement's ``RETURNING`` rows) is recorded as an :class:`Ack`; :func:`lost_acks` then finds
the ones whose audit row is missing (the audit row is written by a trigger in the write's own
transaction, and :data:`AUDIT_REPLAY` checks that the audit log replays to the rows as they are).

The SQL writers change several projects in one statement the way docs/dba.md asks (locked in
uuid order first): two statements locking the same rows in opposite orders deadlock in any
PostgreSQL database, and no trigger can reorder a statement's own scan. Every other deadlock
counts as a failure.

Projects only ever join manual customers here (or none), so each mode's layout is exact:
per-project mode leaves every project in a manual customer or its own, single mode in a
manual customer or its org's default one. Mode changes go through switch_customer_mode only.

``failover=True`` (the cluster test): a 503 with ``Retry-After`` and a failover detail is
counted, not failed, and a worker whose own database connection is lost (the leader died)
reconnects through the multi-host URL and carries on; whatever it had not seen committed is
not acknowledged. Everything else still fails: another 5xx, a 503 for a conflict retried out
(a deadlock loop), a refused or hung HTTP request, an unexpected database error.

Seeded: HIERARCHY_TEST_SEED (default 15) picks every choice; the seed is in each failure
message. Bounded: every worker stops by itself at its deadline; nothing here measures speed.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg import errors

from service.db_errors import STANDBY, UNAVAILABLE, failover_error

SEED = int(os.environ.get("HIERARCHY_TEST_SEED", "15"))
API_WORKERS = 3
SQL_WORKERS = 2
# refusals a caller may get from a race or a bad pick; anything else is a failure
EXPECTED_SQL = (errors.UniqueViolation, errors.ForeignKeyViolation, errors.CheckViolation)
FAILOVER_DETAILS = (UNAVAILABLE, STANDBY)  # the 503 bodies of a failover (service.db_errors)
RECONNECT_PAUSE = 0.2  # seconds between a worker's attempts to reach the new leader
PAUSE_AFTER_503 = 0.1  # a client honouring Retry-After, only faster
CUSTOMERS = "/config/v1/customers"

USER_PROJECTS = "SELECT uuid FROM config.projects WHERE name NOT IN ('hydro', 'sample_project')"

API_OPS = [
    "create", "create", "create_in", "rename", "move", "orphan", "delete",
    "customer", "add", "remove", "rename_customer", "delete_customer", "job",
]  # fmt: skip
SQL_OPS = [
    "insert", "insert", "move", "orphan", "delete", "delete_customer", "customer",
    "rename_customer", "rename", "job", "job", "switch", "grace",
]  # fmt: skip

# send(method, path, json) -> the answer, authenticated as a super admin
Send = Callable[[str, str, Any], httpx.Response]


@dataclass(frozen=True)
class Ack:
    """A write the database acknowledged. ``key``/``value``: a column and the value it took
    (JSON text, as the audit log stores it); None: the action itself (insert, delete, update)."""

    table: str
    uuid: str
    action: str
    key: str | None = None
    value: str | None = None
    sent: float = 0.0  # time.monotonic() when the op began (before its picks and its request)
    at: float = 0.0  # time.monotonic() of the acknowledgement


@dataclass
class Tally:
    """What the workers saw, shared by all of them (appends only, under a lock)."""

    failures: list[str] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    unavailable: list[float] = field(default_factory=list)  # monotonic times of failover 503s
    reconnects: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _op: threading.local = field(default_factory=threading.local)  # the worker's current op

    def begin(self) -> None:
        """A worker starts an op: its acks are for writes sent from now on."""
        self._op.sent = time.monotonic()

    def fail(self, message: str) -> None:
        with self._lock:
            self.failures.append(message)

    def ack(self, table: str, uuid: Any, action: str, key: str | None = None, value: Any = None) -> None:
        text = None if key is None else json.dumps(None if value is None else str(value))
        with self._lock:
            sent = getattr(self._op, "sent", 0.0)
            self.acks.append(Ack(table, str(uuid), action, key, text, sent, time.monotonic()))

    def answered(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    def lost_connection(self) -> None:
        with self._lock:
            self.reconnects += 1

    def failover_figures(self, seed: int, acked_before: int, lost: list, killed: list, times: dict) -> dict:
        """The measurements both failover tests print (terminal summary), in one order: ``times``
        holds the monotonic moments ``killed_at``, ``promoted_at`` and ``first_ack``."""
        statuses = Counter(self.statuses)
        return {
            "seed": seed,
            "writes acknowledged (before the kill)": f"{len(self.acks)} ({acked_before})",
            "acknowledged writes lost": len(lost),
            "API answers by status": dict(sorted(statuses.items())),
            "5xx other than 503": sum(n for s, n in statuses.items() if s >= 500 and s != 503),
            "503 answers (failover, with Retry-After)": len(self.unavailable),
            "workers' own database connections lost and reopened": self.reconnects,
            "killed processes (Patroni, postmaster and children)": len(killed),
            "kill -> standby promoted (s)": times["promoted_at"] - times["killed_at"],
            "kill -> first acknowledged write on the new leader (s)": times["first_ack"] - times["killed_at"],
        }

    def first_ack_after(self, moment: float) -> float | None:
        """When the first write sent after ``moment`` was acknowledged (None: none yet). A
        write sent earlier may have committed earlier, its answer read later."""
        with self._lock:
            return min((a.at for a in self.acks if a.sent >= moment), default=None)


class Picker:
    """Random existing rows, read on the worker's own connection (plain reads, no locks); none
    while the worker has no connection (an API worker during a failover)."""

    def __init__(self, conn: psycopg.Connection | None, rng: random.Random):
        self.conn, self.rng = conn, rng

    def _some(self, query: str, k: int) -> list:
        if self.conn is None:
            return []
        rows = self.conn.execute(query).fetchall()
        return [r[0] for r in self.rng.sample(rows, min(k, len(rows)))]

    def projects(self, k: int = 1) -> list:
        return self._some(USER_PROJECTS, k)

    def manual(self):
        found = self._some("SELECT uuid FROM config.customers WHERE origin = 'manual'", 1)
        return found[0] if found else None

    def any_customer(self):
        found = self._some("SELECT uuid FROM config.customers WHERE origin <> 'system'", 1)
        return found[0] if found else None


class Workload:
    """API_WORKERS API writers and SQL_WORKERS SQL writers, each on its own seeded choices.

    ``url``: the database (the workers' own connections: picks and SQL writes); ``send``: the
    API; ``grace_after``: seconds after the start from which the SQL writers may change the
    grace period; ``limit``: seconds after which every worker stops by itself.
    """

    def __init__(
        self,
        *,
        seed: int,
        org: str,
        url: str,
        send: Send,
        grace_after: float,
        limit: float,
        failover: bool = False,
    ) -> None:
        self.seed, self.org, self.url, self.send = seed, org, url, send
        self.grace_after, self.limit, self.failover = grace_after, limit, failover
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = 0.0

    # -- running -------------------------------------------------------------------------------
    def start(self) -> Workload:
        self.started_at = time.monotonic()
        self._threads = [
            threading.Thread(target=self._guarded, args=(self._api_worker, self.seed * 100 + i), daemon=True)
            for i in range(API_WORKERS)
        ] + [
            threading.Thread(
                target=self._guarded, args=(self._sql_worker, self.seed * 100 + 50 + i), daemon=True
            )
            for i in range(SQL_WORKERS)
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 60) -> bool:
        """Tell the workers to stop and wait for them; False when one hung."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() - self.started_at < self.limit

    def _guarded(self, worker: Callable[[int], None], seed: int) -> None:
        try:
            worker(seed)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.tally.fail(f"{worker.__name__}: {exc!r}")

    def _connect(self, wait: bool) -> psycopg.Connection | None:
        """The worker's own connection. In failover mode None while no node accepts writes:
        at once, or (``wait``) when the worker's time is up first."""
        while True:
            try:
                return psycopg.connect(self.url, autocommit=True, connect_timeout=2)
            except psycopg.OperationalError:
                if not self.failover:
                    raise
            if not wait or not self._running():
                return None
            time.sleep(RECONNECT_PAUSE)

    def _lost(self, exc: psycopg.Error) -> bool:
        """Whether ``exc`` is the worker's connection lost to a failover (it then reconnects)."""
        if not (self.failover and failover_error(exc)):
            return False
        self.tally.lost_connection()
        return True

    def _worker(self, seed: int, ops: list[str], run: Callable, *, needs_connection: bool) -> None:
        """Seeded ops until the worker's time is up, picking rows on its own connection. A
        worker that ``needs_connection`` (SQL writes) waits for it after a failover; the others
        (API writers) go on meanwhile with what needs no pick, reconnecting now and then."""
        rng = random.Random(seed)
        conn, retry_at = None, 0.0
        try:
            while self._running():
                if conn is None and time.monotonic() >= retry_at:
                    conn = self._connect(wait=needs_connection)
                    retry_at = time.monotonic() + RECONNECT_PAUSE
                if conn is None and needs_connection:
                    return  # its time is up
                op = rng.choice(ops)
                self.tally.begin()
                try:
                    run(op, rng, Picker(conn, rng), conn)
                except EXPECTED_SQL:
                    pass
                except psycopg.Error as exc:  # a deadlock, a serialization failure, anything else
                    if self._lost(exc):
                        conn.close()
                        conn = None
                        continue
                    self.tally.fail(f"{op}: {exc} {exc.diag.message_detail} {exc.diag.context}")
                except httpx.HTTPError as exc:  # the service is never down: a hang or a crash
                    self.tally.fail(f"API {op}: {exc!r}")
        finally:
            if conn is not None:
                conn.close()

    # -- the API writers -----------------------------------------------------------------------
    def _api_worker(self, seed: int) -> None:
        self._worker(seed, API_OPS, self._api_op, needs_connection=False)

    def _api_op(self, op: str, rng: random.Random, pick: Picker, conn: psycopg.Connection) -> None:
        base = f"/config/v1/orgs/{self.org}/projects"
        ack = self.tally.ack
        if op in ("create", "create_in"):
            body = {"name": f"p{rng.randrange(80)}"}
            if op == "create_in" and (c := pick.manual()):
                body["customer"] = str(c)
            if (r := self._call(op, "POST", f"{base}/", body)) is not None:
                ack("projects", r["uuid"], "insert")
                ack("projects", r["uuid"], "update", "customer_id", r["customer"])
        elif op == "customer":
            if (r := self._call(op, "POST", f"{CUSTOMERS}/", {"name": f"c{rng.randrange(40)}"})) is not None:
                ack("customers", r["uuid"], "insert")
        elif op == "job":
            self._call(op, "POST", f"{CUSTOMERS}/reconcile", {"force": rng.random() < 0.5})
        elif op in ("rename", "move", "orphan", "delete") and (ps := pick.projects()):
            url = f"{base}/{ps[0]}"
            if op == "delete":
                if self._call(op, "DELETE", url) is not None:
                    ack("projects", ps[0], "delete")
            elif op == "rename":
                if (r := self._call(op, "PATCH", url, {"name": f"p{rng.randrange(80)}"})) is not None:
                    ack("projects", ps[0], "update", "name", r["name"])
            elif op == "orphan":
                if (r := self._call(op, "PATCH", url, {"customer": None})) is not None:
                    ack("projects", ps[0], "update", "customer_id", r["customer"])
            elif c := pick.manual():
                if (r := self._call(op, "PATCH", url, {"customer": str(c)})) is not None:
                    ack("projects", ps[0], "update", "customer_id", r["customer"])
        elif op in ("add", "remove") and (c := pick.manual()):
            refs = [{"uuid": str(p)} for p in pick.projects(rng.randint(1, 3))]
            if refs and (r := self._call(op, "POST", f"{CUSTOMERS}/{c}/{op}_projects", {"projects": refs})):
                for moved in r["projects"]:
                    if op == "add":
                        ack("projects", moved, "update", "customer_id", c)
                    else:
                        ack("projects", moved, "update")
        elif op == "rename_customer" and (c := pick.manual()):
            if (
                r := self._call(op, "PATCH", f"{CUSTOMERS}/{c}", {"name": f"c{rng.randrange(40)}"})
            ) is not None:
                ack("customers", c, "update", "name", r["name"])
        elif op == "delete_customer" and (c := pick.any_customer()):
            if self._call(op, "DELETE", f"{CUSTOMERS}/{c}") is not None:
                ack("customers", c, "delete")

    def _call(self, op: str, method: str, path: str, body: Any = None) -> Any:
        """The answer's JSON ({} when empty) when it is a 2xx, else None (a 4xx is a refusal the
        workload's random picks may earn; a 5xx is a failure, bar a failover's 503)."""
        r = self.send(method, path, body)
        self.tally.answered(r.status_code)
        if r.status_code < 300:
            return r.json() if r.content else {}
        if r.status_code == 503 and self.failover:
            detail = r.json().get("detail") if r.content else None
            if r.headers.get("Retry-After") and detail in FAILOVER_DETAILS:
                with self.tally._lock:
                    self.tally.unavailable.append(time.monotonic())
                time.sleep(PAUSE_AFTER_503)
                return None
        if r.status_code >= 500:
            self.tally.fail(f"API {op} {method} {path}: {r.status_code} {r.headers} {r.text}")
        return None

    # -- the SQL writers -----------------------------------------------------------------------
    def _sql_worker(self, seed: int) -> None:
        self._worker(seed, SQL_OPS, self._sql_op, needs_connection=True)

    def _sql_op(self, op: str, rng: random.Random, pick: Picker, conn: psycopg.Connection) -> None:
        ack = self.tally.ack
        if op == "insert":
            names = [f"s{rng.randrange(200)}" for _ in range(rng.randint(1, 4))]
            for (uid,) in conn.execute(
                "INSERT INTO config.projects (org_id, name) "
                "SELECT %s::uuid, n FROM unnest(%s::text[]) n GROUP BY n RETURNING uuid",
                (self.org, names),
            ).fetchall():
                ack("projects", uid, "insert")
        elif op in ("move", "orphan"):
            target = pick.manual() if op == "move" else None
            if op == "orphan" or target:
                # several rows in uuid order, as docs/dba.md says (and add_projects does): two
                # statements locking the same rows in opposite orders deadlock in any
                # PostgreSQL database, whatever the triggers do
                for uid, customer in conn.execute(
                    "WITH l AS (SELECT uuid FROM config.projects WHERE uuid = ANY (%s)"
                    " ORDER BY uuid FOR NO KEY UPDATE)"
                    " UPDATE config.projects p SET customer_id = %s FROM l WHERE p.uuid = l.uuid"
                    " RETURNING p.uuid, p.customer_id",
                    (pick.projects(rng.randint(1, 3)), target),
                ).fetchall():
                    ack("projects", uid, "update", "customer_id", customer)
        elif op == "delete":
            for (uid,) in conn.execute(
                "DELETE FROM config.projects WHERE uuid = ANY (%s) RETURNING uuid", (pick.projects(),)
            ).fetchall():
                ack("projects", uid, "delete")
        elif op == "delete_customer" and (c := pick.any_customer()):
            for (uid,) in conn.execute(
                "DELETE FROM config.customers WHERE uuid = %s RETURNING uuid", (c,)
            ).fetchall():
                ack("customers", uid, "delete")
        elif op == "customer":
            (uid,) = conn.execute(
                "INSERT INTO config.customers (name) VALUES (%s) RETURNING uuid", (f"q{rng.randrange(40)}",)
            ).fetchone()
            ack("customers", uid, "insert")
        elif op == "rename_customer" and (c := pick.manual()):
            for uid, name in conn.execute(
                "UPDATE config.customers SET name = %s WHERE uuid = %s RETURNING uuid, name",
                (f"q{rng.randrange(40)}", c),
            ).fetchall():
                ack("customers", uid, "update", "name", name)
        elif op == "rename" and (ps := pick.projects()):
            for uid, name in conn.execute(
                "UPDATE config.projects SET name = %s WHERE uuid = %s RETURNING uuid, name",
                (f"s{rng.randrange(200)}", ps[0]),
            ).fetchall():
                ack("projects", uid, "update", "name", name)
        elif op == "job":
            result = conn.execute("SELECT config.reconcile_customers()").fetchone()[0]
            if result.get("error"):
                self.tally.fail(f"SQL job: {result['error']}")
        elif op == "switch" and rng.random() < 0.3:
            conn.execute("SELECT config.switch_customer_mode(%s)", (rng.random() < 0.5,))
        elif op == "grace" and time.monotonic() - self.started_at > self.grace_after:
            conn.execute(
                "UPDATE config.tunables SET value = to_jsonb(%s::integer) "
                "WHERE name = 'customer_orphan_grace_seconds'",
                (rng.randint(0, 3),),
            )


# -- the checks ---------------------------------------------------------------------------------
def count(conn: psycopg.Connection, query: str, params=None) -> int:
    return conn.execute(query, params).fetchone()[0]


# Each statement counts the rows that break one rule; every count must be 0.
RULES = {
    "orphans": "SELECT count(*) FROM config.projects WHERE customer_id IS NULL",
    "empty auto-created customers": """
        SELECT count(*) FROM config.customers c WHERE c.origin IN ('system', 'project')
        AND NOT EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = c.uuid)""",
    "system projects outside their own customer": """
        SELECT count(*) FROM config.projects p JOIN config.customers c ON c.uuid = p.customer_id
        WHERE config.is_system_project(p.name) AND c.created_for_project IS DISTINCT FROM p.uuid""",
    "projects outside the mode's layout": """
        SELECT count(*) FROM config.projects p JOIN config.customers c ON c.uuid = p.customer_id
        WHERE NOT config.is_system_project(p.name) AND c.origin <> 'manual'
          AND CASE WHEN config.tunable('turbine_api_feature_migrate_projects_to_orgs') = 'true'::jsonb
                   THEN c.origin <> 'project' OR c.created_for_project <> p.uuid
                   ELSE c.origin <> 'default' OR c.default_for_org <> p.org_id END""",
    "customers of the other mode": """
        SELECT count(*) FROM config.customers c
        WHERE c.origin = CASE WHEN config.tunable('turbine_api_feature_migrate_projects_to_orgs')
                                   = 'true'::jsonb
                              THEN 'default' ELSE 'project' END""",
    "single-project customers not named after their project": """
        SELECT count(*) FROM config.customers c
        CROSS JOIN LATERAL (SELECT array_agg(p.name) AS names, array_agg(p.uuid) AS ids
                            FROM config.projects p WHERE p.customer_id = c.uuid) one
        WHERE cardinality(one.ids) = 1
          AND c.name <> ALL (config.customer_name_candidates(one.names[1], one.ids[1]))""",
    "duplicate customer names": "SELECT count(*) - count(DISTINCT name) FROM config.customers",
    "overlapping job runs": """
        SELECT count(*) FROM (SELECT started, lag(finished) OVER (ORDER BY started, id) AS previous
                              FROM config.job_runs WHERE NOT skipped) r
        WHERE r.started < r.previous""",
    "job runs with an error": "SELECT count(*) FROM config.job_runs WHERE error IS NOT NULL",
    "customers still queued for settling": "SELECT count(*) FROM config.customers_unsettled",
}

# The audit log replayed: for each object, its last audited action and the last audited value
# of each column must be the row as it is (or the object is gone after a delete).
AUDIT_REPLAY = """
    WITH last AS (
        SELECT DISTINCT ON (object_id) object_id, action FROM config.audit_log
        WHERE object_type = %(table)s ORDER BY object_id, id DESC
    ), audited AS (
        SELECT DISTINCT ON (a.object_id, k.key) a.object_id, k.key, a.after -> k.key AS value
        FROM config.audit_log a CROSS JOIN LATERAL unnest(%(columns)s::text[]) AS k (key)
        WHERE a.object_type = %(table)s AND a.action IN ('insert', 'update') AND a.after ? k.key
        ORDER BY a.object_id, k.key, a.id DESC
    ), current AS (
        SELECT (to_jsonb(t) ->> 'uuid')::uuid AS object_id, to_jsonb(t) AS row FROM {table} t
    )
    SELECT (SELECT count(*) FROM current c LEFT JOIN last l USING (object_id)
            WHERE l.action IS DISTINCT FROM 'insert' AND l.action IS DISTINCT FROM 'update')
         + (SELECT count(*) FROM last l WHERE l.action <> 'delete'
            AND NOT EXISTS (SELECT 1 FROM current c WHERE c.object_id = l.object_id))
         + (SELECT count(*) FROM audited a JOIN current c USING (object_id)
            WHERE a.value IS DISTINCT FROM c.row -> a.key)
"""
AUDITED_COLUMNS = {
    "projects": ["name", "customer_id", "org_id"],
    "customers": ["name", "origin", "default_for_org", "created_for_project"],
}

# The acknowledged writes without their audit row: an insert or a delete needs that action's
# row; a column's acknowledged value must be the after-value of one of the object's insert or
# update rows (a no-op move leaves no row of its own: an earlier one holds that value); an
# update without a column needs an update row.
LOST_ACKS = """
    SELECT a.ord FROM unnest(%(tables)s::text[], %(ids)s::uuid[], %(actions)s::text[],
                             %(keys)s::text[], %(values)s::jsonb[])
                      WITH ORDINALITY AS a (object_type, object_id, action, key, value, ord)
    WHERE NOT EXISTS (
        SELECT 1 FROM config.audit_log l
        WHERE l.object_type = a.object_type AND l.object_id = a.object_id
          AND CASE WHEN a.key IS NULL THEN l.action = a.action
                   ELSE l.action IN ('insert', 'update') AND l.after -> a.key = a.value END)
    ORDER BY a.ord
"""


def lost_acks(conn: psycopg.Connection, acks: list[Ack]) -> list[Ack]:
    """The acknowledged writes the database does not remember (see LOST_ACKS)."""
    rows = conn.execute(
        LOST_ACKS,
        {
            "tables": [a.table for a in acks],
            "ids": [a.uuid for a in acks],
            "actions": [a.action for a in acks],
            "keys": [a.key for a in acks],
            "values": [a.value for a in acks],
        },
    ).fetchall()
    return [acks[ord_ - 1] for (ord_,) in rows]


def assert_every_rule(conn: psycopg.Connection, seed: int) -> None:
    """After a forced run of the job, assert every rule on the rows and the audit log replay."""
    result = conn.execute("SELECT config.reconcile_customers(force => true)").fetchone()[0]
    assert result["error"] is None and result["orphans_waiting"] == 0, f"seed {seed}: {result}"
    broken = {rule: count(conn, query) for rule, query in RULES.items()}
    assert broken == dict.fromkeys(RULES, 0), f"seed {seed}"
    for table, columns in AUDITED_COLUMNS.items():
        query = AUDIT_REPLAY.replace("{table}", f"config.{table}")
        mismatches = count(conn, query, {"table": table, "columns": columns})
        assert mismatches == 0, f"seed {seed}: audit log of {table} differs from the rows"
    assert count(conn, USER_PROJECTS.replace("SELECT uuid", "SELECT count(*)")) > 10  # it ran


def deadlocks(url: str) -> int:
    """The database's deadlock count since its server started (or its statistics were reset)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return count(conn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
