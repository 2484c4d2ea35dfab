"""2. Idle tick: one run of the job among N associated projects (single mode).

On a file copy of a 6.1 template (N projects, tunable false), ``SELECT
config.reconcile_customers(source => 'cron')`` -- exactly what the pg_cron tick runs -- timed from
the client over loopback (one round trip, commit included), three ways:

* **0 orphans** -- nothing to do.
* **100 orphans waiting** -- 100 projects orphaned just now, inside their grace period: the
  tick finds them and leaves them (the idle case with orphans present).
* **100 orphans due** -- before each tick (not timed) 100 projects are orphaned and their
  ``orphaned_at`` set past the grace period: the tick re-homes all 100.

Each figure is over ``max(runs, 30)`` ticks (each tick is one run), after 3 warm-up ticks. The
job's own duration (``job_runs.finished - started``) is reported beside the client figure.
"""

from __future__ import annotations

import psycopg

from bench.common import BenchCluster, Figure, Section, Target, stopwatch

TICK = "SELECT config.reconcile_customers(source => 'cron')"
LAST_RUN = (
    "SELECT extract(epoch FROM finished - started)::float8 * 1000, projects_associated "
    "FROM config.job_runs ORDER BY id DESC LIMIT 1"
)
ORPHAN = """
UPDATE config.projects SET customer_id = NULL
WHERE uuid IN (SELECT uuid FROM config.projects WHERE customer_id IS NOT NULL
               AND name LIKE 'p%%' ORDER BY random() LIMIT %s)
"""
BACKDATE = "UPDATE config.projects SET orphaned_at = now() - interval '1 hour' WHERE customer_id IS NULL"


def run(bc: BenchCluster, *, projects: int, runs: int) -> Section:
    tpl = bc.template("6.1", projects, per_project=False)
    url = bc.create("bench_tick", template=tpl)
    ticks = max(runs, 30)
    figs = {
        "idle0": Figure("tick, 0 orphans (client)", "ms"),
        "idle0_srv": Figure("tick, 0 orphans (job_runs)", "ms"),
        "wait100": Figure("tick, 100 orphans waiting in grace (client)", "ms"),
        "wait100_srv": Figure("tick, 100 orphans waiting in grace (job_runs)", "ms"),
        "due100": Figure("tick, 100 due orphans re-homed (client)", "ms"),
        "due100_srv": Figure("tick, 100 due orphans re-homed (job_runs)", "ms"),
    }
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

            def tick(key: str, expect: int) -> None:
                with stopwatch() as t:
                    conn.execute(TICK, prepare=True).fetchone()
                srv, associated = conn.execute(LAST_RUN).fetchone()
                assert associated == expect, (key, associated, expect)
                figs[key].add(t() * 1000)
                figs[key + "_srv"].add(srv)

            for _ in range(3):
                conn.execute(TICK, prepare=True)
            for _ in range(ticks):
                tick("idle0", 0)
            conn.execute(ORPHAN, (100,))
            for _ in range(ticks):
                tick("wait100", 0)
            conn.execute(BACKDATE)
            tick_count = 0
            conn.execute(TICK)  # homes the waiting ones; start clean
            while tick_count < ticks:
                conn.execute(ORPHAN, (100,))
                conn.execute(BACKDATE)
                tick("due100", 100)
                tick_count += 1
    finally:
        bc.drop("bench_tick")
    section = Section(
        f"2. Idle tick ({projects:,} projects, single mode)",
        "`SELECT config.reconcile_customers(source => 'cron')` from a client over loopback TCP; each tick "
        "is one run (its own transaction, committed with synchronous_commit on).",
        list(figs.values()),
    )
    section.targets.append(Target("tick, 0 orphans", figs["idle0"], "<=", 2.0))
    section.targets.append(Target("tick, 100 orphans waiting", figs["wait100"], "<=", 2.0))
    section.targets.append(Target("tick, 100 due orphans re-homed", figs["due100"], "<=", 5.0))
    return section
