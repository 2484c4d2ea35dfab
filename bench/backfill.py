"""1. Upgrade backfill: N projects at 6.0, upgraded to 6.1 with the tunable true and false.

Per run and per mode, on a fresh file copy of a 6.0 template holding N projects:

* **floor** -- on an identical copy of the projects (``CREATE TABLE ... AS``: no triggers, no
  constraints, no indexes) plus a bare customers table: one ``INSERT ... SELECT`` creating the
  customers the mode needs and one ``UPDATE ... FROM`` associating every project, one transaction.
* **design floor** -- the same association in plain SQL, one transaction, no trigger, on tables
  built like the 6.1 ones: the projects copied with their 6.0 constraints and indexes plus the
  6.1 columns, their foreign keys and indexes; a customers table with every key, foreign key and
  CHECK of ``config.customers``; an audit table like ``config.audit_log`` with its indexes. Two
  statements: customers inserted with their audit rows (the new row), then projects associated
  with theirs (``changed`` = customer_id, old and new value), each a data-modifying CTE.
* **row by row** -- the first 10,000 projects copied to a table with only a primary key, and a
  customers table with only a unique key; from Python, per project one ``INSERT ... RETURNING``
  (the project's customer, or the org's default customer via ON CONFLICT) and one ``UPDATE``, in
  one transaction; the time is multiplied by N / 10,000.
* **upgrade** -- ``service.migrations.migrate(url, "6.1")`` with the tunable set first; the
  figure is the job's run (``job_runs.finished - started`` of the ``upgrade`` run, the init job
  the migration ends with); the whole migration's wall time is reported beside it.
* **backend memory** -- while the upgrade runs, /proc/<pid>/status of every backend of the
  database is sampled: ``VmHWM`` (kernel high-water mark, shared buffers touched included) and
  the sampled peak of ``RssAnon`` (the backend's private memory).

Ratios (job / floor, row-by-row / job) are taken within one run.
"""

from __future__ import annotations

import psycopg

from bench.common import BenchCluster, Deadline, Figure, MemorySampler, Section, Target, log, stopwatch
from service.migrations import migrate

RBR_SAMPLE = 10_000
# job / bare floor limits by tunable value (issue: the rules paid once per statement)
BARE_LIMIT = {"true": 14.0, "false": 16.0}

FLOOR_SETUP = """
DROP SCHEMA IF EXISTS bench_floor CASCADE;
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.projects AS SELECT * FROM config.projects;
ALTER TABLE bench_floor.projects ADD COLUMN customer_id uuid, ADD COLUMN orphaned_at timestamptz;
CREATE TABLE bench_floor.customers (
    uuid uuid, name text, description text, origin text, default_for_org uuid,
    created_for_project uuid, created_by uuid, created timestamptz, modified timestamptz, key uuid);
VACUUM ANALYZE bench_floor.projects;
"""

# The same association as the job: system projects and (per-project mode) every project get a
# customer named after them; otherwise the org's default customer.
FLOOR_INSERT = """
INSERT INTO bench_floor.customers
    (uuid, name, origin, default_for_org, created_for_project, created, modified, key)
SELECT gen_random_uuid(), s.name, s.origin, s.org, s.project, now(), now(), coalesce(s.project, s.org)
FROM (
    SELECT p.name, CASE WHEN p.name IN ('hydro', 'sample_project') THEN 'system' ELSE 'project' END AS origin,
           NULL::uuid AS org, p.uuid AS project
    FROM bench_floor.projects p
    WHERE %(per_project)s OR p.name IN ('hydro', 'sample_project')
    UNION ALL
    SELECT o.name || '-default', 'default', o.uuid, NULL
    FROM config.orgs o
    WHERE NOT %(per_project)s
) s
"""
FLOOR_UPDATE = """
UPDATE bench_floor.projects p SET customer_id = c.uuid
FROM bench_floor.customers c
WHERE c.key = CASE WHEN %(per_project)s OR p.name IN ('hydro', 'sample_project') THEN p.uuid ELSE p.org_id END
"""

DESIGN_SETUP = """
DROP SCHEMA IF EXISTS bench_design CASCADE;
CREATE SCHEMA bench_design;
CREATE TABLE bench_design.customers (
    uuid                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                text NOT NULL UNIQUE
                        CHECK (name ~ '^[^[:space:][:cntrl:]]+$' AND length(name) <= 255),
    description         text,
    origin              text NOT NULL DEFAULT 'manual'
                        CHECK (origin IN ('system', 'default', 'project', 'manual')),
    default_for_org     uuid UNIQUE REFERENCES config.orgs (uuid) ON DELETE CASCADE,
    created_for_project uuid UNIQUE,
    created_by          uuid REFERENCES config.users (uuid) ON DELETE SET NULL,
    created             timestamptz NOT NULL DEFAULT now(),
    modified            timestamptz NOT NULL DEFAULT now(),
    CHECK ((origin = 'default') = (default_for_org IS NOT NULL)
           AND (origin IN ('system', 'project')) = (created_for_project IS NOT NULL)));
CREATE TABLE bench_design.projects (LIKE config.projects INCLUDING ALL);
ALTER TABLE bench_design.projects DROP CONSTRAINT IF EXISTS projects_name_valid;
ALTER TABLE bench_design.projects
    ADD CONSTRAINT projects_name_valid CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_-]*$' AND length(name) <= 255),
    ADD FOREIGN KEY (org_id) REFERENCES config.orgs (uuid) ON DELETE RESTRICT,
    ADD COLUMN customer_id uuid REFERENCES bench_design.customers (uuid) ON DELETE SET NULL,
    ADD COLUMN orphaned_at timestamptz;
INSERT INTO bench_design.projects SELECT p.*, NULL, NULL FROM config.projects p;
CREATE INDEX ON bench_design.projects (customer_id);
CREATE INDEX ON bench_design.projects (org_id) WHERE customer_id IS NULL;
CREATE TABLE bench_design.audit_log (LIKE config.audit_log INCLUDING ALL);
VACUUM ANALYZE bench_design.projects, bench_design.customers, bench_design.audit_log;
"""

# The job's associations and their audit rows, written by hand: customers with an insert row
# each (the new row), then projects with an update row each (customer_id: old -> new).
DESIGN_INSERT = """
WITH new AS (
    INSERT INTO bench_design.customers (name, origin, default_for_org, created_for_project)
    SELECT s.name, s.origin, s.org, s.project
    FROM (
        SELECT p.name,
               CASE WHEN p.name IN ('hydro', 'sample_project') THEN 'system' ELSE 'project' END AS origin,
               NULL::uuid AS org, p.uuid AS project
        FROM bench_design.projects p
        WHERE p.customer_id IS NULL AND (%(per_project)s OR p.name IN ('hydro', 'sample_project'))
        UNION ALL
        SELECT o.name || '-default', 'default', o.uuid, NULL
        FROM config.orgs o
        WHERE NOT %(per_project)s
          AND EXISTS (SELECT 1 FROM bench_design.projects p WHERE p.org_id = o.uuid AND p.customer_id IS NULL)
    ) s
    ORDER BY coalesce(s.project, s.org)
    ON CONFLICT DO NOTHING
    RETURNING *
)
INSERT INTO bench_design.audit_log (action, object_type, object_id, after)
SELECT 'insert', 'customers', n.uuid,
       jsonb_build_object('uuid', n.uuid, 'name', n.name, 'description', n.description, 'origin', n.origin,
                          'default_for_org', n.default_for_org, 'created_for_project', n.created_for_project,
                          'created_by', n.created_by, 'created', n.created, 'modified', n.modified)
FROM new n
"""
DESIGN_UPDATE = """
WITH moved AS (
    UPDATE bench_design.projects p SET customer_id = c.uuid
    FROM bench_design.customers c
    WHERE p.customer_id IS NULL
      AND CASE WHEN %(per_project)s OR p.name IN ('hydro', 'sample_project')
               THEN c.created_for_project = p.uuid ELSE c.default_for_org = p.org_id END
    RETURNING p.uuid, p.customer_id
)
INSERT INTO bench_design.audit_log (action, object_type, object_id, changed, before, after)
SELECT 'update', 'projects', m.uuid, ARRAY['customer_id'],
       jsonb_build_object('customer_id', NULL), jsonb_build_object('customer_id', m.customer_id)
FROM moved m
"""

RBR_SETUP = """
DROP SCHEMA IF EXISTS bench_rbr CASCADE;
CREATE SCHEMA bench_rbr;
CREATE TABLE bench_rbr.projects AS SELECT * FROM config.projects ORDER BY name LIMIT %(n)s;
ALTER TABLE bench_rbr.projects ADD PRIMARY KEY (uuid), ADD COLUMN customer_id uuid;
CREATE TABLE bench_rbr.customers (
    uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text, origin text, key uuid UNIQUE,
    created timestamptz DEFAULT now(), modified timestamptz DEFAULT now());
VACUUM ANALYZE bench_rbr.projects;
"""
RBR_INSERT = """
INSERT INTO bench_rbr.customers (name, origin, key) VALUES (%s, %s, %s)
ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key
RETURNING uuid
"""
RBR_UPDATE = "UPDATE bench_rbr.projects SET customer_id = %s WHERE uuid = %s"


def script(conn: psycopg.Connection, text: str) -> None:
    for stmt in text.split(";\n"):
        if stmt.strip():
            conn.execute(stmt)


def floor(url: str, per_project: bool) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        script(conn, FLOOR_SETUP)
        conn.execute("CHECKPOINT")
        with stopwatch() as t:
            with conn.transaction():
                conn.execute(FLOOR_INSERT, {"per_project": per_project})
                conn.execute(FLOOR_UPDATE, {"per_project": per_project})
        conn.execute("DROP SCHEMA bench_floor CASCADE")
    return t()


def design_floor(url: str, per_project: bool) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        script(conn, DESIGN_SETUP)
        conn.execute("CHECKPOINT")
        with stopwatch() as t:
            with conn.transaction():
                conn.execute(DESIGN_INSERT, {"per_project": per_project})
                n = conn.execute(DESIGN_UPDATE, {"per_project": per_project}).rowcount
        left = conn.execute(
            "SELECT count(*) FROM bench_design.projects WHERE customer_id IS NULL"
        ).fetchone()[0]
        conn.execute("DROP SCHEMA bench_design CASCADE")
    if left or not n:
        raise AssertionError(f"design floor left {left} projects without a customer ({n} associated)")
    return t()


def row_by_row(url: str, per_project: bool, sample: int) -> float:
    """Seconds for ``sample`` projects, one INSERT and one UPDATE each from Python."""
    with psycopg.connect(url, autocommit=True) as conn:
        script(conn, RBR_SETUP.replace("%(n)s", str(int(sample))))
        projects = conn.execute("SELECT uuid, name, org_id FROM bench_rbr.projects").fetchall()
        orgs = dict(conn.execute("SELECT uuid, name FROM config.orgs").fetchall())
        conn.execute("CHECKPOINT")
        with stopwatch() as t:
            with conn.transaction(), conn.cursor() as cur:
                for uuid, name, org_id in projects:
                    if per_project or name in ("hydro", "sample_project"):
                        args = (name, "system" if name in ("hydro", "sample_project") else "project", uuid)
                    else:
                        args = (orgs[org_id] + "-default", "default", org_id)
                    cur.execute(RBR_INSERT, args, prepare=True)
                    customer = cur.fetchone()[0]
                    cur.execute(RBR_UPDATE, (customer, uuid), prepare=True)
        conn.execute("DROP SCHEMA bench_rbr CASCADE")
    return t()


RBR_REAL_INSERT_PROJECT = """
INSERT INTO config.customers (name, origin, created_for_project) VALUES (%s, %s, %s) RETURNING uuid
"""
RBR_REAL_INSERT_DEFAULT = """
INSERT INTO config.customers (name, origin, default_for_org) VALUES (%s, 'default', %s)
ON CONFLICT (default_for_org) DO NOTHING RETURNING uuid
"""
RBR_REAL_UPDATE = "UPDATE config.projects SET customer_id = %s WHERE uuid = %s"


def row_by_row_real(bc: BenchCluster, per_project: bool, sample: int) -> float:
    """Seconds for ``sample`` orphan projects homed one INSERT and one UPDATE at a time, from
    Python, through the real 6.1 tables (every trigger, constraint and index on)."""
    name = "bench_rbr_real"
    url = bc.create(name, template=bc.template("6.1", 0))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE config.projects DISABLE TRIGGER projects_assign_customer")
            conn.execute(
                "INSERT INTO config.projects (org_id, name, description, settings) "
                "SELECT (SELECT uuid FROM config.orgs LIMIT 1), 'p' || lpad(i::text, 7, '0'), "
                "'benchmark project ' || i, '{\"ttl_days\": 30}'::jsonb FROM generate_series(1, %s) i",
                (sample,),
            )
            conn.execute("ALTER TABLE config.projects ENABLE TRIGGER projects_assign_customer")
            conn.execute("VACUUM ANALYZE")
            projects = conn.execute(
                "SELECT p.uuid, p.name, p.org_id, o.name FROM config.projects p "
                "JOIN config.orgs o ON o.uuid = p.org_id "
                "WHERE p.customer_id IS NULL"
            ).fetchall()
            conn.execute("CHECKPOINT")
            default: dict = {}
            with stopwatch() as t:
                with conn.transaction(), conn.cursor() as cur:
                    for uuid, pname, org_id, org_name in projects:
                        if per_project or pname in ("hydro", "sample_project"):
                            origin = "system" if pname in ("hydro", "sample_project") else "project"
                            cur.execute(RBR_REAL_INSERT_PROJECT, (pname, origin, uuid), prepare=True)
                            customer = cur.fetchone()[0]
                        else:
                            cur.execute(
                                RBR_REAL_INSERT_DEFAULT, (org_name + "-default", org_id), prepare=True
                            )
                            row = cur.fetchone()
                            customer = default.setdefault(org_id, row[0] if row else None)
                        cur.execute(RBR_REAL_UPDATE, (customer, uuid), prepare=True)
            left = conn.execute("SELECT count(*) FROM config.projects WHERE customer_id IS NULL").fetchone()[
                0
            ]
            assert left == 0, left
    finally:
        bc.drop(name)
    return t()


def upgrade(bc: BenchCluster, dbname: str, url: str, per_project: bool) -> tuple[float, float, int, int]:
    """(job seconds, migration seconds, peak VmHWM kB, peak RssAnon kB) of the upgrade."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE config.tunables SET value = %s::jsonb "
            "WHERE name = 'turbine_api_feature_migrate_projects_to_orgs'",
            ("true" if per_project else "false",),
        )
        conn.execute("CHECKPOINT")
    with bc.admin() as mon:

        def pids() -> list[int]:
            return [
                r[0]
                for r in mon.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                    (dbname,),
                ).fetchall()
            ]

        with MemorySampler(pids, interval=0.05) as mem, stopwatch() as t:
            migrate(url, "6.1")
    with psycopg.connect(url, autocommit=True) as conn:
        job, associated = conn.execute(
            "SELECT extract(epoch FROM finished - started)::float8, projects_associated "
            "FROM config.job_runs WHERE source = 'upgrade' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        orphans = conn.execute("SELECT count(*) FROM config.projects WHERE customer_id IS NULL").fetchone()[0]
    if orphans:
        raise AssertionError(f"upgrade left {orphans} orphans")
    return job, t(), max(mem.hwm_kb.values(), default=0), max(mem.anon_kb.values(), default=0)


def run(bc: BenchCluster, *, projects: int, runs: int, budget: float) -> Section:
    deadline = Deadline(budget)
    tpl = bc.template("6.0", projects)
    sample = min(RBR_SAMPLE, max(1000, projects // 10))
    figs: dict[str, Figure] = {}

    def fig(key: str, name: str, unit: str, note: str = "") -> Figure:
        if key not in figs:
            figs[key] = Figure(name, unit, note=note)
        return figs[key]

    for mode, _per_project in (("true", True), ("false", False)):
        fig(f"job_{mode}", f"job run, tunable {mode}", "s", "init job of the 6.1 migration (job_runs)")
        fig(f"migr_{mode}", f"whole migration, tunable {mode}", "s", "DDL + init job + yoyo bookkeeping")
        fig(f"floor_{mode}", f"floor (bare INSERT..SELECT + UPDATE..FROM), tunable {mode}", "s")
        fig(
            f"design_{mode}",
            f"design floor (6.1 keys, FKs, checks, audit rows; plain SQL), tunable {mode}",
            "s",
            "no trigger, one transaction",
        )
        fig(f"ratio_design_{mode}", f"job / design floor, tunable {mode}", "x", "within one run")
        fig(
            f"rbrreal_{mode}",
            f"row by row through the 6.1 tables, tunable {mode}, extrapolated to {projects:,}",
            "s",
            f"measured on {sample:,} projects, triggers on",
        )
        fig(
            f"rbr_{mode}",
            f"row by row on bare copies, tunable {mode}, extrapolated to {projects:,}",
            "s",
            f"measured on {sample:,} projects, no triggers",
        )
        fig(f"ratio_floor_{mode}", f"job / floor, tunable {mode}", "x", "within one run")
        fig(f"ratio_rbr_{mode}", f"row by row (6.1 tables) / job, tunable {mode}", "x", "within one run")
        fig(f"ratio_rbrbare_{mode}", f"row by row (bare copies) / job, tunable {mode}", "x", "within one run")
        fig(f"hwm_{mode}", f"backend peak VmHWM, tunable {mode}", "MiB", "includes shared buffers touched")
        fig(f"anon_{mode}", f"backend peak RssAnon (sampled), tunable {mode}", "MiB", "private memory")

    for i in range(runs):
        if i >= 5 and deadline.left < 0:
            log(f"backfill: time budget spent after {i} runs")
            break
        modes = (("true", True), ("false", False)) if i % 2 == 0 else (("false", False), ("true", True))
        for mode, per_project in modes:
            name = "bench_backfill"
            url = bc.create(name, template=tpl)
            fl = floor(url, per_project)
            de = design_floor(url, per_project)
            rb = row_by_row(url, per_project, sample) * projects / sample
            rr = row_by_row_real(bc, per_project, sample) * projects / sample
            job, mig, hwm, anon = upgrade(bc, name, url, per_project)
            bc.drop(name)
            figs[f"job_{mode}"].add(job)
            figs[f"migr_{mode}"].add(mig)
            figs[f"floor_{mode}"].add(fl)
            figs[f"design_{mode}"].add(de)
            figs[f"ratio_design_{mode}"].add(job / de)
            figs[f"rbr_{mode}"].add(rb)
            figs[f"rbrreal_{mode}"].add(rr)
            figs[f"ratio_floor_{mode}"].add(job / fl)
            figs[f"ratio_rbr_{mode}"].add(rr / job)
            figs[f"ratio_rbrbare_{mode}"].add(rb / job)
            figs[f"hwm_{mode}"].add(hwm / 1024)
            figs[f"anon_{mode}"].add(anon / 1024)
            log(
                f"backfill run {i + 1} tunable {mode}: job {job:.2f}s migration {mig:.2f}s floor {fl:.2f}s "
                f"row-by-row {rr:.1f}s (x{rr / job:.1f}) bare {rb:.1f}s (x{rb / job:.1f}) "
                f"job/floor {job / fl:.2f} design floor {de:.2f}s job/design {job / de:.2f} "
                f"VmHWM {hwm / 1024:.0f}MiB RssAnon {anon / 1024:.0f}MiB"
            )

    order = [
        f"{k}_{m}"
        for m in ("true", "false")
        for k in (
            "job",
            "floor",
            "ratio_floor",
            "design",
            "ratio_design",
            "rbrreal",
            "ratio_rbr",
            "rbr",
            "ratio_rbrbare",
            "migr",
            "hwm",
            "anon",
        )
    ]
    section = Section(
        f"1. Upgrade backfill ({projects:,} projects, 6.0 -> 6.1)",
        "Fresh file copy of a 6.0 database per run and mode. Floor and row-by-row run on copies in the "
        "same database, in the same run, just before the upgrade.",
        [figs[k] for k in order],
    )
    for mode in ("true", "false"):
        section.targets.append(
            Target(f"job / floor, tunable {mode}", figs[f"ratio_floor_{mode}"], "<=", BARE_LIMIT[mode])
        )
        section.targets.append(
            Target(f"job / design floor, tunable {mode}", figs[f"ratio_design_{mode}"], "<=", 1.3)
        )
        section.targets.append(
            Target(f"row by row (6.1 tables) / job, tunable {mode}", figs[f"ratio_rbr_{mode}"], ">=", 10.0)
        )
    return section
