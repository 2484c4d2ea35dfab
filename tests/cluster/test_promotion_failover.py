"""The promotion of customers to orgs and its reversal through a failover under load (6.4).

The 6.4 case of issue 23 item 5 (the 6.1 workload is tests/cluster/test_failover_under_load.py).
The Patroni cluster of tests/cluster/conftest.py is filled with the promotion data of
tests/promotion_data.py (built at 6.1, migrated to 6.4; per-project mode when the seed is odd,
single mode when even, as the race test of tests/api/test_concurrent_invariants.py alternates)
and served by a real ``hierarchy run`` process on the multi-host URL. Then, at once: a promoter
promoting and reversing as the owner (config.promote_customers / config.demote_orgs, a dry run
now and then), two SQL writers (create, rename and delete projects, membership changes, new
users) and two API writers (create projects in a customer of the org, list orgs), all seeded.

After WARMUP seconds the promoter is told to send a real step, and the leader (its Patroni, its
postmaster and every child: SIGKILL) dies just after the step was sent. When ``(seed // 2)`` is
even, a session on the leader first holds ROW EXCLUSIVE on config.orgs, so the step is surely
IN FLIGHT at the kill: it holds the projects and memberships locks and waits for the orgs one
(config.lock_for_promotion); otherwise the kill lands wherever the step is (recorded). The
workload goes on against the new leader for AFTER_FIRST_WRITE seconds after its first
acknowledged write.

Asserted on the new leader: the promoted or the restored layout, never half (the race test's
checks, tests/promotion_data.py: assert_layout); every acknowledged write (a 2xx answer, a
committed statement's RETURNING row) has its audit row; no 5xx but failover 503s with
Retry-After, none before the kill; each acknowledged step stays done and the unanswered one
either fully happened or not at all (config.org_promotions counts exactly the acknowledged steps,
plus at most the unanswered ones); then the next step runs on the new leader and gives the other
layout, whole. Membership changes are not tallied as acknowledged writes (only projects are).

Seeded (HIERARCHY_TEST_SEED, default 15), loopback only, every wait with a timeout, the workers
stop by themselves after LIMIT seconds. About 40 s with the cluster's start: part of ``make test``.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from service.db_errors import failover_error
from service.migrations import migrate
from tests.cluster.conftest import HierarchyRun, record, wait_until
from tests.concurrent_workload import EXPECTED_SQL, FAILOVER_DETAILS, SEED, Tally, lost_acks
from tests.promotion_data import (
    PASSWORD,
    PROMOTION_REFUSALS,
    SAME_ORG_PROJECT,
    add_operator,
    assert_layout,
    build,
    change_membership,
    final_demote,
    rename_clashes,
)

pytestmark = pytest.mark.slow

WARMUP = 4.0  # seconds of workload on the first leader before the step that the kill meets
AFTER_FIRST_WRITE = 4.0  # seconds of workload on the new leader after its first acknowledged write
LIMIT = 90.0  # every worker stops by itself after this many seconds
CLIENT_TIMEOUT = 15.0  # an HTTP request taking longer is a hang: a failure
RECONNECT_PAUSE = 0.2
IN_FORCE = "SELECT config.promotion_in_force() IS NOT NULL"
# every real step that committed: each promotion, and each reversal of one
COMMITTED_STEPS = "SELECT count(*) + count(demoted_at) FROM config.org_promotions"
WAITING_STEP = """
    SELECT count(*) FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query ~ 'config\\.(promote_customers|demote_orgs)'
"""


@dataclass
class Step:
    """A real (not dry-run) step the promoter sent; ``outcome``: ok, refused, no answer, or None
    while it waits for its answer."""

    name: str
    sent: float
    outcome: str | None = None


class Race:
    """The promoter, SQL writers and API writers of the docstring, failover-aware: a worker whose
    connection is lost reconnects through the multi-host URL; what it did not see answered is not
    acknowledged."""

    def __init__(self, seed: int, url: str, client: httpx.Client) -> None:
        self.seed, self.url, self.client = seed, url, client
        self.tally = Tally()
        self.steps: list[Step] = []
        self.pending: Step | None = None  # the step sent and not answered yet
        self.arm, self.sent = threading.Event(), threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = 0.0

    def start(self) -> Race:
        self.started_at = time.monotonic()
        workers = [(self._promoter, 0), (self._sql_writer, 1), (self._sql_writer, 2)]
        workers += [(self._api_writer, 3), (self._api_writer, 4)]
        self._threads = [
            threading.Thread(target=self._guarded, args=(w, self.seed * 10 + i), daemon=True)
            for w, i in workers
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float) -> bool:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() - self.started_at < LIMIT

    def _guarded(self, worker, seed: int) -> None:
        try:
            worker(random.Random(seed))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.tally.fail(f"{worker.__name__}: {exc!r}")

    def _connect(self) -> psycopg.Connection | None:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=2)
        except psycopg.OperationalError:
            time.sleep(RECONNECT_PAUSE)
            return None

    def _sql_loop(self, rng: random.Random, op) -> None:
        """``op(conn, rng)`` again and again on a connection of its own, reconnecting after a
        failover; a refusal of EXPECTED_SQL is fine, any other database error a failure."""
        conn = None
        try:
            while self._running():
                if conn is None and (conn := self._connect()) is None:
                    continue
                self.tally.begin()
                try:
                    op(conn, rng)
                except EXPECTED_SQL:
                    pass
                except psycopg.Error as exc:
                    if failover_error(exc):
                        self.tally.lost_connection()
                        conn.close()
                        conn = None
                    else:
                        self.tally.fail(f"{op.__name__}: {exc.sqlstate} {exc}")
        finally:
            if conn is not None:
                conn.close()

    # -- the promoter ----------------------------------------------------------------------------
    def _promoter(self, rng: random.Random) -> None:
        self._sql_loop(rng, self._promote_or_demote)

    def _promote_or_demote(self, conn: psycopg.Connection, rng: random.Random) -> None:
        step = "demote_orgs" if conn.execute(IN_FORCE).fetchone()[0] else "promote_customers"
        armed = self.arm.is_set() and not self.sent.is_set()
        dry_run = not armed and rng.random() < 0.2
        attempt = None
        if not dry_run:
            attempt = Step(step, time.monotonic())
            self.steps.append(attempt)
            self.pending = attempt
        if armed:
            self.sent.set()
        try:
            conn.execute(f"SELECT config.{step}(dry_run => %s)", (dry_run,))
            if attempt:
                attempt.outcome = "ok"
        except psycopg.Error as exc:
            if attempt:
                attempt.outcome = "no answer" if failover_error(exc) else "refused"
            if exc.sqlstate not in PROMOTION_REFUSALS:
                raise  # a failover (the loop reconnects) or a failure
            if exc.sqlstate == "HR071":  # a project created since clashes: rename it away
                rename_clashes(conn)
        finally:
            self.pending = None
        time.sleep(rng.uniform(0.05, 0.3))

    # -- the SQL writers -------------------------------------------------------------------------
    def _sql_writer(self, rng: random.Random) -> None:
        self._sql_loop(rng, self._sql_write)

    def _sql_write(self, conn: psycopg.Connection, rng: random.Random) -> None:
        ack = self.tally.ack
        op = rng.choice(["create", "create", "rename", "delete", "join", "leave", "primary", "user"])
        if op == "create":
            for (uuid,) in conn.execute(
                "INSERT INTO config.projects (org_id, name, customer_id) "
                f"SELECT org_id, %s, customer_id FROM ({SAME_ORG_PROJECT}) p RETURNING uuid",
                (f"n{rng.randrange(300)}",),
            ).fetchall():
                ack("projects", uuid, "insert")
        elif op == "rename":
            for uuid, name in conn.execute(
                "UPDATE config.projects SET name = %s WHERE uuid = (SELECT uuid FROM config.projects "
                "WHERE name ~ '^[na][0-9]' ORDER BY random() LIMIT 1) RETURNING uuid, name",
                (f"n{rng.randrange(300)}",),
            ).fetchall():
                ack("projects", uuid, "update", "name", name)
        elif op == "delete":
            for (uuid,) in conn.execute(
                "DELETE FROM config.projects WHERE uuid = (SELECT uuid FROM config.projects "
                "WHERE name ~ '^[na][0-9]' ORDER BY random() LIMIT 1) RETURNING uuid"
            ).fetchall():
                ack("projects", uuid, "delete")
        elif op == "user":
            add_operator(conn, rng)
        else:
            change_membership(conn, op, keep=("admin@x", "service-admin@example.com"))

    # -- the API writers -------------------------------------------------------------------------
    def _api_writer(self, rng: random.Random) -> None:
        conn, retry_at = None, 0.0
        try:
            while self._running():
                if conn is None and time.monotonic() >= retry_at:
                    conn, retry_at = self._connect(), time.monotonic() + RECONNECT_PAUSE
                self.tally.begin()
                try:
                    row = conn.execute(SAME_ORG_PROJECT).fetchone() if conn and rng.random() < 0.7 else None
                except psycopg.Error as exc:
                    if not failover_error(exc):
                        raise
                    self.tally.lost_connection()
                    conn.close()
                    conn, row = None, None
                try:
                    if row:
                        body = {"name": f"a{rng.randrange(300)}", "customer": str(row[1])}
                        r = self.client.post(f"/config/v1/orgs/{row[0]}/projects/", json=body)
                    else:
                        r = self.client.get("/config/v1/orgs/")
                except httpx.HTTPError as exc:  # the service is never down: a hang or a crash
                    self.tally.fail(f"API: {exc!r}")
                    continue
                self._answered(r)
        finally:
            if conn is not None:
                conn.close()

    def _answered(self, r: httpx.Response) -> None:
        self.tally.answered(r.status_code)
        if r.status_code == 201:
            self.tally.ack("projects", r.json()["uuid"], "insert")
        elif r.status_code == 503 and r.headers.get("Retry-After"):
            detail = r.json().get("detail") if r.content else None
            if detail in FAILOVER_DETAILS:
                with self.tally._lock:
                    self.tally.unavailable.append(time.monotonic())
                time.sleep(0.1)
                return
        if r.status_code >= 500:
            self.tally.fail(f"API {r.request.method} {r.request.url}: {r.status_code} {r.text}")


def _login(base: str) -> str:
    """The super admin of the promotion data (``hierarchy run`` adds no admin when one exists)."""
    r = httpx.post(base + "/config/v1/login", json={"email": "admin@x", "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["auth_token"]["access_token"]


def test_promotion_and_reversal_through_a_failover_under_load(patroni_cluster, tmp_path, record_property):
    cluster = patroni_cluster
    url = cluster.multi_host_url()
    old = cluster.leader()
    (standby,) = [n for n in cluster.nodes if n is not old]
    per_project, hold = SEED % 2 == 1, (SEED // 2) % 2 == 0
    migrate(old.url(), "6.1")
    build(old.url(), per_project=per_project)
    service = HierarchyRun(url, tmp_path / "service.log", to="6.4").start()
    client = race = blocker = None
    try:
        service.wait_healthy()
        client = httpx.Client(
            base_url=service.base,
            headers={"Authorization": f"Bearer {_login(service.base)}"},
            timeout=CLIENT_TIMEOUT,
        )
        race = Race(SEED, url, client).start()
        tally = race.tally
        time.sleep(WARMUP)

        if hold:  # the step will wait for the orgs lock, holding the others: in flight at the kill
            blocker = psycopg.connect(old.url())
            blocker.execute("LOCK TABLE config.orgs IN ROW EXCLUSIVE MODE")
        race.arm.set()
        wait_until(race.sent.is_set, 15, "the promoter to send a real step")
        if hold:
            with psycopg.connect(old.url(), autocommit=True) as conn:
                wait_until(
                    lambda: conn.execute(WAITING_STEP).fetchone()[0], 15, "the step to wait for the lock"
                )
        acked_before = len(tally.acks)
        steps_before = sum(s.outcome == "ok" for s in race.steps)
        in_flight = race.pending  # sent, no answer yet (one may still arrive: sent before the kill)
        kill_began = time.monotonic()  # a 503 may come while the victims are still being killed
        killed = cluster.kill_node(old)
        killed_at = time.monotonic()  # from here on only the new leader can acknowledge a write
        new = cluster.new_leader(old)
        promoted_at = time.monotonic()
        assert new is standby
        first_ack = wait_until(
            lambda: tally.first_ack_after(killed_at), 30, "an acknowledged write on the new leader"
        )
        time.sleep(AFTER_FIRST_WRITE)
        assert race.stop(timeout=2 * CLIENT_TIMEOUT), f"seed {SEED}: a worker hung"
        statuses = Counter(tally.statuses)
        acked_steps = sum(s.outcome == "ok" for s in race.steps)
        unanswered = sum(s.outcome == "no answer" for s in race.steps)

        with psycopg.connect(new.url(), autocommit=True) as conn:
            lost = lost_acks(conn, tally.acks)
            committed = conn.execute(COMMITTED_STEPS).fetchone()[0]
            figures = tally.failover_figures(
                SEED,
                acked_before,
                lost,
                killed,
                {"killed_at": killed_at, "promoted_at": promoted_at, "first_ack": first_ack},
            )
            figures |= {
                "mode (per-project)": per_project,
                "promotion steps acknowledged (before the kill)": f"{acked_steps} ({steps_before})",
                "step in flight at the kill (held on a lock): its answer": (
                    f"{in_flight.name}: {in_flight.outcome} ({hold})" if in_flight else f"none ({hold})"
                ),
                "unanswered steps that committed": f"{committed - acked_steps} of {unanswered}",
            }
            for name, value in figures.items():
                record(record_property, name, value)

            assert tally.failures == [], f"seed {SEED}: " + "\n".join(tally.failures)
            assert lost == [], f"seed {SEED}: acknowledged but missing on the new leader: {lost}"
            assert all(t >= kill_began for t in tally.unavailable), f"seed {SEED}: a 503 before the kill"
            assert not hold or (in_flight and in_flight.outcome == "no answer"), f"seed {SEED}: {in_flight}"
            # each acknowledged step stays done; an unanswered one happened whole or not at all
            assert acked_steps <= committed <= acked_steps + unanswered, f"seed {SEED}: {race.steps}"
            promoted = assert_layout(conn, SEED)
            last = [s for s in race.steps if s.outcome in ("ok", "no answer")][-1:]
            if last and last[0].outcome == "ok":
                assert promoted == (last[0].name == "promote_customers"), f"seed {SEED}: {race.steps}"
            # and the next step works on the new leader, giving the other layout whole
            if promoted:
                final_demote(conn)
            else:
                conn.execute("SELECT config.promote_customers()")
            assert assert_layout(conn, SEED) is not promoted, f"seed {SEED}"
            assert conn.execute(COMMITTED_STEPS).fetchone()[0] == committed + 1
        assert len(tally.acks) > acked_before > 5, f"seed {SEED}: {statuses}"  # it ran, on both
        assert service.alive(), "the service was never restarted"
    except BaseException:
        print(f"--- service ---\n{service.log_tail()}\n{cluster.log_tails()}")  # shown with the failure
        raise
    finally:
        if race is not None:
            race.stop(timeout=2 * CLIENT_TIMEOUT)
        if blocker is not None:
            with contextlib.suppress(psycopg.Error):
                blocker.close()
        if client is not None:
            client.close()
        service.stop()
