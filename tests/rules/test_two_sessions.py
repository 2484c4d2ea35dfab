"""The two-session races of issue 15, replayed step by step: each test holds one transaction
open in session A, starts session B's statement in a thread, waits until B is blocked by A
(pg_blocking_pids) or done, then lets A commit and checks the rows.

With the fixes B is blocked where the old code let it run ahead; either way the final state
is asserted, so each test fails on the old schema and passes on the new one.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg.rows import dict_row

from service.migrations import migrate
from service.queries import query
from tests.concurrent_workload import deadlocks
from tests.rules.helpers import add_projects, customers, org_id, scalar, set_mode

MODE = "turbine_api_feature_migrate_projects_to_orgs"


class Session(threading.Thread):
    """Runs one statement on its own autocommit connection; keeps its result or its error."""

    def __init__(self, url: str, statement: str, params=None):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        self.pid = self.conn.info.backend_pid
        self.statement, self.params = statement, params
        self.result = self.error = None

    def run(self):
        try:
            cur = self.conn.execute(self.statement, self.params)
            self.result = cur.fetchall() if cur.description else None
        except psycopg.Error as exc:
            self.error = exc
        finally:
            self.conn.close()


def start_blocked(watcher, session: Session, timeout: float = 10.0) -> bool:
    """Starts the session and waits until it is blocked by another one (True) or done (False)."""
    session.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not session.is_alive():
            return False
        if scalar(watcher, "SELECT cardinality(pg_blocking_pids(%s)) > 0", (session.pid,)):
            return True
        time.sleep(0.02)
    raise AssertionError("session B neither blocked nor finished")


def wait_until_blocked(watcher, pid: int, who: str, timeout: float = 10.0) -> None:
    """Waits until backend ``pid`` waits for a lock another session holds."""
    deadline = time.monotonic() + timeout
    while not scalar(watcher, "SELECT cardinality(pg_blocking_pids(%s)) > 0", (pid,)):
        assert time.monotonic() < deadline, f"{who} never waited for another session"
        time.sleep(0.02)


def joiner_rolls_back(watcher, b, joiner, customer, join, then) -> None:
    """Session B holds the customer; the joiner (``join``: a statement adding a project to it)
    takes the customer's foreign-key lock and waits for B; B runs ``then``, which leaves the
    customer one project, so rule 4 wants a rename the joiner's lock forbids; then the joiner's
    transaction is rolled back instead of settling the customer itself."""
    with b.transaction():
        b.execute("SELECT 1 FROM config.customers WHERE uuid = %s FOR NO KEY UPDATE", (customer,))
        thread = threading.Thread(target=joiner.execute, args=join, daemon=True)
        thread.start()
        wait_until_blocked(watcher, joiner.info.backend_pid, "the joiner")
        b.execute(*then)
    thread.join(timeout=30)
    assert not thread.is_alive(), "the joiner hung"
    joiner.rollback()


def finish(session: Session):
    session.join(timeout=30)
    assert not session.is_alive(), "session B hung"
    assert session.error is None, repr(session.error)
    return session.result


@pytest.fixture
def sessions(db_url):
    """(url, watcher, A): an autocommit watcher and session A, whose transactions the test opens."""
    with (
        psycopg.connect(db_url, autocommit=True) as watcher,
        psycopg.connect(db_url, autocommit=True) as a,
    ):
        yield db_url, watcher, a


def named_after(conn, customer, project) -> bool:
    """Whether the customer carries one of the names rule 4 gives for the project."""
    return scalar(
        conn,
        """SELECT c.name = ANY (config.customer_name_candidates(p.name, p.uuid))
           FROM config.customers c, config.projects p WHERE c.uuid = %s AND p.uuid = %s""",
        (customer, project),
    )


def customer_of(conn, project):
    return scalar(conn, "SELECT customer_id FROM config.projects WHERE uuid = %s", (project,))


def empty_auto_created(conn):
    return scalar(
        conn,
        """SELECT count(*) FROM config.customers c WHERE c.origin IN ('system', 'project')
           AND NOT EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = c.uuid)""",
    )


def test_1_the_job_leaves_no_customer_made_for_an_orphan_that_went(sessions):
    """The job locks the orphans it picks without waiting: those another transaction is
    deleting or re-homing right now are left alone (the old code made their customers, then
    associated nothing: two empty customers for ever)."""
    url, watcher, a = sessions
    set_mode(watcher, True)
    deleted, moved = add_projects(watcher, ["p_deleted", "p_moved"])
    watcher.execute(
        "UPDATE config.projects SET customer_id = NULL WHERE uuid = ANY (%s)", ([deleted, moved],)
    )
    manual = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('manual') RETURNING uuid")
    with a.transaction():
        a.execute("DELETE FROM config.projects WHERE uuid = %s", (deleted,))
        a.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (manual, moved))
        job = Session(url, "SELECT config.reconcile_customers(force => true) AS r")
        assert not start_blocked(watcher, job)  # it did not wait for A
        result = finish(job)[0]["r"]
    assert (result["customers_created"], result["projects_associated"]) == (0, 0)
    assert empty_auto_created(watcher) == 0
    assert set(customers(watcher)) == {"hydro", "sample_project", "p_moved"}
    assert customers(watcher)["p_moved"] == ("manual", ["p_moved"])  # rule 4 named it


def test_1_an_orphan_held_by_a_transaction_that_rolls_back_is_homed_by_the_next_run(sessions):
    url, watcher, a = sessions
    set_mode(watcher, True)
    (held,) = add_projects(watcher, ["held"])
    watcher.execute("UPDATE config.projects SET customer_id = NULL WHERE uuid = %s", (held,))
    with a.transaction(force_rollback=True):
        a.execute("UPDATE config.projects SET description = 'busy' WHERE uuid = %s", (held,))
        job = Session(url, "SELECT config.reconcile_customers(force => true) AS r")
        assert not start_blocked(watcher, job)
        skipped = finish(job)[0]["r"]
    assert (skipped["projects_associated"], skipped["orphans_unresolved"]) == (0, 1)
    assert empty_auto_created(watcher) == 0
    homed = scalar(watcher, "SELECT config.reconcile_customers(force => true)")
    assert (homed["projects_associated"], homed["orphans_waiting"]) == (1, 0)
    assert customers(watcher)["held"] == ("project", ["held"])


@pytest.mark.parametrize("to_per_project", [False, True])
def test_2_a_mode_switch_waits_for_a_project_being_created(sessions, to_per_project):
    url, watcher, a = sessions
    set_mode(watcher, not to_per_project)  # on a fresh 6.1: no default customer yet
    with a.transaction():
        a.execute("INSERT INTO config.projects (org_id, name) VALUES (%s, 'racer')", (org_id(watcher),))
        switch = Session(url, "SELECT config.switch_customer_mode(%s)", (to_per_project,))
        assert start_blocked(watcher, switch)
    finish(switch)
    racer = customers(watcher)
    home = next(name for name, (_, projects) in racer.items() if "racer" in projects)
    assert racer[home][0] == ("project" if to_per_project else "default")
    assert scalar(watcher, "SELECT count(*) FROM config.customers WHERE origin = 'default'") == (
        0 if to_per_project else 1
    )
    assert scalar(watcher, "SELECT count(*) FROM config.customers WHERE origin = 'project'") == (
        1 if to_per_project else 0
    )
    assert scalar(watcher, "SELECT count(*) FROM config.projects WHERE customer_id IS NULL") == 0


def test_3_deleting_a_customer_does_not_deadlock_with_a_move_out_of_it(sessions):
    url, watcher, a = sessions
    p1, p2 = add_projects(watcher, ["p1", "p2"])
    doomed = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('doomed') RETURNING uuid")
    other = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('other') RETURNING uuid")
    watcher.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = ANY (%s)", (doomed, [p1, p2]))
    with a.transaction():
        a.execute("UPDATE config.projects SET description = 'held' WHERE uuid = %s", (p1,))
        delete = Session(url, "DELETE FROM config.customers WHERE uuid = %s", (doomed,))
        assert start_blocked(watcher, delete)
        # the move: the old code's settle step waited here for the customer the deletion held
        a.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (other, p1))
    finish(delete)
    assert "doomed" not in customers(watcher)
    assert customer_of(watcher, p1) == other and named_after(watcher, other, p1)  # rule 4
    assert customer_of(watcher, p2) is None


def test_3_deleting_a_customer_waits_for_a_transaction_holding_its_projects_locked(sessions):
    url, watcher, a = sessions
    (p1,) = add_projects(watcher, ["p1"])
    doomed = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('doomed') RETURNING uuid")
    other = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('other') RETURNING uuid")
    watcher.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (doomed, p1))
    with a.transaction():
        a.execute("SELECT 1 FROM config.projects WHERE uuid = %s FOR UPDATE", (p1,))
        delete = Session(url, "DELETE FROM config.customers WHERE uuid = %s", (doomed,))
        assert start_blocked(watcher, delete)
        a.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (other, p1))
    finish(delete)
    assert "doomed" not in customers(watcher)
    assert customer_of(watcher, p1) == other and named_after(watcher, other, p1)


def test_4_two_moves_settle_rule_4_on_what_the_other_committed(sessions):
    url, watcher, a = sessions
    x, w = add_projects(watcher, ["x", "w"])
    holder = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('holder') RETURNING uuid")
    elsewhere = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('elsewhere') RETURNING uuid")
    watcher.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (holder, x))
    assert scalar(watcher, "SELECT name FROM config.customers WHERE uuid = %s", (holder,)) == "x"
    with a.transaction():
        a.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (elsewhere, x))
        move_in = Session(url, "UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (holder, w))
        start_blocked(watcher, move_in)  # blocked now; the old code committed at once
    finish(move_in)
    assert customer_of(watcher, w) == holder
    assert named_after(watcher, holder, w)  # the old code left it named x


def test_4_a_rename_and_a_move_in_settle_on_what_the_other_committed(sessions):
    url, watcher, a = sessions
    (j,) = add_projects(watcher, ["j"])
    empty = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('empty') RETURNING uuid")
    with a.transaction():
        a.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (empty, j))
        rename = Session(url, "UPDATE config.customers SET name = 'foo' WHERE uuid = %s", (empty,))
        start_blocked(watcher, rename)
    rename.join(timeout=30)
    # the rename now sees that the customer holds exactly j, and is refused (rule 4)
    assert isinstance(rename.error, psycopg.errors.CheckViolation), rename.error
    assert customer_of(watcher, j) == empty and named_after(watcher, empty, j)


def test_5_a_run_that_waited_for_the_lock_starts_when_it_has_it(sessions):
    url, watcher, a = sessions
    with a.transaction():
        first = scalar(a, "SELECT config.reconcile_customers(force => true)")
        waiting = Session(url, "SELECT config.reconcile_customers(wait => true) AS r")
        assert start_blocked(watcher, waiting)
        time.sleep(0.2)
        committing = scalar(a, "SELECT clock_timestamp()")
    second = finish(waiting)[0]["r"]
    runs = watcher.execute(
        "SELECT id, started, finished FROM config.job_runs WHERE id = ANY (%s) ORDER BY id",
        ([first["run_id"], second["run_id"]],),
    ).fetchall()
    assert len(runs) == 2 and not second["skipped"]
    (_, _, first_finished), (_, second_started, _) = runs
    assert second_started > committing > first_finished  # the old code: started before committing


def test_4_a_rename_left_to_a_joiner_that_aborts_is_settled_by_the_job(sessions):
    """A rename skipped because another transaction was adding a project to the customer (its
    foreign-key check holds the row) is queued; when that transaction rolls back instead of
    settling the customer itself, the next job run gives the customer its project's name."""
    url, watcher, b = sessions
    pa, pb, pc = add_projects(watcher, ["pa", "pb", "pc"])
    group = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('group') RETURNING uuid")
    watcher.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = ANY (%s)", (group, [pa, pb]))
    with psycopg.connect(url) as joiner:  # not autocommit: its transaction is rolled back
        joiner_rolls_back(
            watcher,
            b,
            joiner,
            group,
            join=("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (group, pc)),
            then=("UPDATE config.projects SET customer_id = NULL WHERE uuid = %s", (pb,)),
        )
    assert scalar(watcher, "SELECT name FROM config.customers WHERE uuid = %s", (group,)) == "group"
    queued = "SELECT count(*) FROM config.customers_unsettled WHERE customer_id = %s"
    assert scalar(watcher, queued, (group,)) == 1
    watcher.execute("SELECT config.reconcile_customers(force => true)")
    assert named_after(watcher, group, pa)
    assert scalar(watcher, "SELECT count(*) FROM config.customers_unsettled") == 0


def test_3_a_project_created_under_a_name_being_taken_does_not_deadlock_with_rule_4(sessions):
    """Session B renames project q to p7, then moves r out of the customer holding both, so
    rule 4 renames that customer to p7. Meanwhile session C creates a project p7 and waits for
    B's project name. The old code had already put C's new customer p7 in the index, and B's
    rename waited for it: C was aborted as a deadlock victim. Now C's own customer is made
    after its rows, and a rename never waits long for a name: C gets the plain duplicate-name
    error, and the customer carries p7."""
    url, watcher, b = sessions
    set_mode(watcher, True)
    q, r = add_projects(watcher, ["q", "r"])
    group = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('group') RETURNING uuid")
    other = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('other') RETURNING uuid")
    watcher.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = ANY (%s)", (group, [q, r]))
    create = Session(url, "INSERT INTO config.projects (org_id, name) VALUES (%s, 'p7')", (org_id(watcher),))
    with b.transaction():
        b.execute("UPDATE config.projects SET name = 'p7' WHERE uuid = %s", (q,))
        assert start_blocked(watcher, create)  # C waits for B's project name
        b.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (other, r))
    create.join(timeout=30)
    assert isinstance(create.error, psycopg.errors.UniqueViolation), repr(create.error)
    assert customer_of(watcher, q) == group
    watcher.execute("SELECT config.reconcile_customers(force => true)")
    assert named_after(watcher, group, q)
    assert scalar(watcher, "SELECT name FROM config.customers WHERE uuid = %s", (group,)) == "p7"


def test_4_at_release_6_4_the_next_statement_settles_a_queued_customer(db_url_64):
    """At 6.4 the job is unscheduled, so the queue drains where customers are settled: a
    customer left misnamed by a joiner that rolled back takes its project's name with the
    next change of any project."""
    with (
        psycopg.connect(db_url_64, autocommit=True) as watcher,
        psycopg.connect(db_url_64, autocommit=True) as b,
        psycopg.connect(db_url_64) as joiner,
    ):
        org = org_id(watcher)
        group = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('group') RETURNING uuid")
        other = scalar(watcher, "INSERT INTO config.customers (name) VALUES ('other') RETURNING uuid")
        insert = "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, %s, %s) RETURNING uuid"
        both = "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, 'pa', %s), (%s, 'pb', %s)"
        # together: the customer never holds one project alone, so it keeps its name
        pa, pb = (r[0] for r in watcher.execute(both + " RETURNING uuid", (org, group, org, group)))
        joiner_rolls_back(
            watcher,
            b,
            joiner,
            group,
            join=(insert, (org, "pc", group)),
            then=("DELETE FROM config.projects WHERE uuid = %s", (pb,)),
        )
        assert scalar(watcher, "SELECT name FROM config.customers WHERE uuid = %s", (group,)) == "group"
        assert scalar(watcher, "SELECT count(*) FROM config.customers_unsettled") == 1
        scalar(watcher, insert, (org, "elsewhere", other))  # any statement that settles customers
        assert named_after(watcher, group, pa)
        assert scalar(watcher, "SELECT count(*) FROM config.customers_unsettled") == 0


@pytest.mark.parametrize(("release", "goes"), [("6.1", "delete"), ("6.1", "move"), ("6.4", "delete")])
def test_4_a_project_joining_a_per_project_customer_while_its_own_project_goes_does_not_deadlock(
    db_url, release, goes
):
    """Session B deletes the projects of a per-project customer one by one in one transaction;
    meanwhile the API's create statement adds a project to that customer: its foreign-key check
    holds the customer row (FOR KEY SHARE) and its settle step waits for B's lock on it. B's
    next delete takes the project the customer was made for: the customer becomes manual, and
    clearing created_for_project (a unique, so key, column) needs the row's FOR UPDATE lock,
    which the joiner's share lock forbids. The old code waited for it there: a deadlock, the
    API's transaction its victim (40P01); at 6.1 moving that project out did the same. Now B
    leaves the change to the joiner, which settles the customer after B commits, and nobody
    waits for the other."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        set_mode(setup, True)
        org = org_id(setup)
        elsewhere = scalar(setup, "INSERT INTO config.customers (name) VALUES ('elsewhere') RETURNING uuid")
        (own,) = add_projects(setup, ["own"])
        made_for_own = customer_of(setup, own)
        x, y = (
            r[0]
            for r in setup.execute(
                "INSERT INTO config.projects (org_id, name, customer_id) "
                "SELECT %s, unnest(ARRAY['x', 'y']), %s RETURNING uuid",
                (org, made_for_own),
            )
        )
    if release == "6.4":
        migrate(db_url, "6.4")
    create = Session(
        db_url,
        query("projects.create"),
        {
            "org_id": org,
            "name": "joiner",
            "description": None,
            "settings": None,
            "customer": made_for_own,
            "all_orgs": True,
            "user_id": None,
            "user_orgs": [],
        },
    )
    with (
        psycopg.connect(db_url, autocommit=True) as watcher,
        psycopg.connect(db_url, autocommit=True) as b,
    ):
        before = deadlocks(db_url)
        with b.transaction():
            b.execute("DELETE FROM config.projects WHERE uuid = %s", (x,))  # B now holds the customer
            assert start_blocked(watcher, create)  # the joiner waits for B in its settle step
            if goes == "delete":
                b.execute("DELETE FROM config.projects WHERE uuid = %s", (own,))
            else:  # release 6.1 only: moved to another customer
                b.execute("UPDATE config.projects SET customer_id = %s WHERE uuid = %s", (elsewhere, own))
        (row,) = finish(create)
        assert row["unknown_customer"] is False and row["customer"] == made_for_own
        origin = watcher.execute(
            "SELECT origin, created_for_project FROM config.customers WHERE uuid = %s", (made_for_own,)
        ).fetchone()
        assert origin == ("manual", None)  # its own project went: an administrator's now
        names = "SELECT array_agg(name ORDER BY name) FROM config.projects WHERE customer_id = %s"
        assert scalar(watcher, names, (made_for_own,)) == ["joiner", "y"]
        assert scalar(watcher, "SELECT count(*) FROM config.customers_unsettled") == 0
        assert empty_auto_created(watcher) == 0
        time.sleep(1.1)  # backends report their statistics at most once a second
        assert deadlocks(db_url) == before


def test_4_a_customer_left_to_a_joiner_that_rolls_back_is_made_manual_by_the_next_statement(db_url):
    """The change issue 21's fix leaves to a joiner (a per-project customer whose own project
    went becomes manual) is queued too: when the joiner rolls back, the next statement that
    settles customers makes the customer manual (release 6.4, where no job runs)."""
    insert = "INSERT INTO config.projects (org_id, name, customer_id) VALUES (%s, %s, %s) RETURNING uuid"
    with psycopg.connect(db_url, autocommit=True) as setup:
        set_mode(setup, True)
        org = org_id(setup)
        other = scalar(setup, "INSERT INTO config.customers (name) VALUES ('other') RETURNING uuid")
        (own,) = add_projects(setup, ["own"])
        made = customer_of(setup, own)
        scalar(setup, insert, (org, "kept", made))
    migrate(db_url, "6.4")
    with (
        psycopg.connect(db_url, autocommit=True) as watcher,
        psycopg.connect(db_url, autocommit=True) as b,
        psycopg.connect(db_url) as joiner,
    ):
        joiner_rolls_back(
            watcher,
            b,
            joiner,
            made,
            join=(insert, (org, "joiner", made)),
            then=("DELETE FROM config.projects WHERE uuid = %s", (own,)),
        )
        state = "SELECT origin, created_for_project IS NULL FROM config.customers WHERE uuid = %s"
        assert watcher.execute(state, (made,)).fetchone() == ("project", False)  # left to the joiner
        assert scalar(watcher, "SELECT array_agg(customer_id) FROM config.customers_unsettled") == [made]
        scalar(watcher, insert, (org, "elsewhere", other))  # any statement that settles customers
        assert watcher.execute(state, (made,)).fetchone() == ("manual", True)
        assert scalar(watcher, "SELECT count(*) FROM config.customers_unsettled") == 0
