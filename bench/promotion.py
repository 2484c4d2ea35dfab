"""6 and 7. The promotion of customers to orgs and its reversal, and the request path at 6.1 and 6.4.

**Promotion and reversal.** A 6.4 template per mode: N projects loaded at 6.0 and spread over
``ORGS`` orgs (the seed's ``hydrolix`` and ``bench-org-1`` ...), users of every role in each
(a super admin, an operator and a read-only user per org; the read-only user of each org is
also an operator of the next: users with several orgs), upgraded to 6.1 with the tunable
(per-project mode: N customers; single mode: a default customer per org) and to 6.4. Per run
and mode, on a fresh file copy:

* **floor** -- copies of orgs, projects, org_memberships, the promotion's bookkeeping tables
  (org_promotions, promoted_orgs, promotion_memberships) and audit_log made with ``LIKE ...
  INCLUDING ALL`` (keys, indexes, checks, defaults; no trigger, no foreign key), then in one
  transaction the promotion's moves in plain SQL, each statement writing its audit rows itself
  (data-modifying CTEs): the new orgs and their insert rows, the customer -> org record, the
  memberships' before-image, the projects moved with their update rows, the memberships added
  with their insert rows, the primaries moved with their update rows. Then, on the same copies,
  the reversal the same way (projects back to the org recorded in promoted_orgs, primaries
  restored, memberships and the created orgs deleted, each with its audit rows). The floor
  writes exactly the bookkeeping the functions write (no table of moved projects since it was
  found derivable: bench/ANALYSIS.md).
* **promote** -- ``SELECT config.promote_customers(false)`` (one statement, one transaction:
  locks, blocker checks, the work, every trigger, the commit-time membership checks).
* **demote** -- ``SELECT config.demote_orgs(false)`` right after.

The floor and the functions must produce the same counts (orgs, moves, memberships, audit rows
by action and table): a run that differs raises. Ratios are taken within one run.

**Request path before and after memberships.** Two databases from the same 6.1 per-project
template (N projects, N customers): one left at 6.1 (the token lookup and the checks read
``users.org_id`` and ``users.role``), one upgraded to 6.4 (they read ``org_memberships``). An
operator of the org is created in each, both services run side by side, and per run wrk drives
the orphan audit and the customers page on each, interleaved (6.1 then 6.4, then the other way
round in the next run), as in section 4.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg

from bench.api import CONCURRENCY, WORKERS, WRK_THREADS, Service, _wrk
from bench.common import BenchCluster, Figure, Section, Target, log, set_mode, stopwatch
from service.migrations import migrate
from service.users import create_user

ORGS = 4
RATIO_LIMIT = 1.5
FLOOR = "bench_pfloor"
TABLES = (
    "org_promotions",
    "orgs",
    "projects",
    "org_memberships",
    "promoted_orgs",
    "promotion_memberships",
)

SETUP = (
    [f"DROP SCHEMA IF EXISTS {FLOOR} CASCADE", f"CREATE SCHEMA {FLOOR}"]
    + [f"CREATE TABLE {FLOOR}.{t} (LIKE config.{t} INCLUDING ALL)" for t in TABLES]
    + [f"INSERT INTO {FLOOR}.{t} SELECT * FROM config.{t}" for t in TABLES[1:4]]
    + [f"CREATE TABLE {FLOOR}.audit_log (LIKE config.audit_log INCLUDING ALL)"]
    + [f"VACUUM ANALYZE {FLOOR}.{t}" for t in (*TABLES, "audit_log")]
)

AUDIT = f"INSERT INTO {FLOOR}.audit_log (action, object_type, object_id, changed, before, after)"

# The promotion in plain SQL (config.promote_now's moves; promotion id 1, nothing locked or checked).
PROMOTE = [
    f"INSERT INTO {FLOOR}.org_promotions (per_project) VALUES (true)",
    f"""
WITH m AS MATERIALIZED (
    SELECT c.uuid AS customer_id, c.origin <> 'default' AS creates,
           CASE WHEN c.origin = 'default' THEN c.default_for_org ELSE gen_random_uuid() END AS target,
           c.name AS org_name, s.org_id AS source_org
    FROM config.customers c
    LEFT JOIN (SELECT DISTINCT ON (p.customer_id) p.customer_id, p.org_id FROM {FLOOR}.projects p
               ORDER BY p.customer_id) s ON s.customer_id = c.uuid
), o AS (
    INSERT INTO {FLOOR}.orgs (uuid, name) SELECT m.target, m.org_name FROM m WHERE m.creates RETURNING *
), a AS (
    {AUDIT} SELECT 'insert', 'orgs', o.uuid, NULL, NULL, to_jsonb(o) FROM o
)
INSERT INTO {FLOOR}.promoted_orgs (org_id, customer_id, promotion_id, created, source_org)
SELECT m.target, m.customer_id, 1, m.creates, m.source_org FROM m
""",
    f"""
INSERT INTO {FLOOR}.promotion_memberships (user_id, org_id, promotion_id, role, is_primary)
SELECT m.user_id, m.org_id, 1, m.role, m.is_primary FROM {FLOOR}.org_memberships m
""",
    f"""
WITH u AS (
    UPDATE {FLOOR}.projects p SET org_id = po.org_id FROM {FLOOR}.promoted_orgs po
    WHERE po.customer_id = p.customer_id AND p.org_id <> po.org_id
    RETURNING p.uuid, po.source_org AS from_org, po.org_id AS to_org
)
{AUDIT} SELECT 'update', 'projects', u.uuid, ARRAY['org_id'],
               jsonb_build_object('org_id', u.from_org), jsonb_build_object('org_id', u.to_org) FROM u
""",
    f"""
WITH n AS (
    INSERT INTO {FLOOR}.org_memberships (user_id, org_id, role, is_primary)
    SELECT b.user_id, po.org_id, b.role, false
    FROM {FLOOR}.promotion_memberships b
    JOIN {FLOOR}.promoted_orgs po ON po.created AND po.source_org = b.org_id
    WHERE b.role <> 'super_admin'
    RETURNING *
)
{AUDIT} SELECT 'insert', 'org_memberships', n.user_id, NULL, NULL, to_jsonb(n) FROM n
""",
    f"""
CREATE TEMP TABLE floor_primaries ON COMMIT DROP AS
SELECT b.user_id, b.org_id AS old_primary, s.org_id AS new_primary
FROM {FLOOR}.promotion_memberships b
JOIN (SELECT DISTINCT ON (po.source_org) po.source_org, po.org_id
      FROM {FLOOR}.promoted_orgs po
      JOIN {FLOOR}.orgs o ON o.uuid = po.org_id
      JOIN (SELECT x.org_id, count(*) AS n FROM {FLOOR}.projects x GROUP BY x.org_id) c
        ON c.org_id = po.org_id
      WHERE po.created AND po.source_org IS NOT NULL
      ORDER BY po.source_org, c.n DESC, o.name) s ON s.source_org = b.org_id
WHERE b.is_primary AND b.role <> 'super_admin'
  AND NOT EXISTS (SELECT 1 FROM {FLOOR}.projects x WHERE x.org_id = b.org_id)
""",
    *(
        f"""
WITH u AS (
    UPDATE {FLOOR}.org_memberships m SET is_primary = {val}
    FROM floor_primaries d WHERE m.user_id = d.user_id AND m.org_id = d.{col}
    RETURNING m.user_id, m.org_id
)
{AUDIT} SELECT 'update', 'org_memberships', u.user_id, ARRAY['is_primary'],
               jsonb_build_object('org_id', u.org_id, 'is_primary', NOT {val}),
               jsonb_build_object('org_id', u.org_id, 'is_primary', {val}) FROM u
"""
        for val, col in (("false", "old_primary"), ("true", "new_primary"))
    ),
]

# The reversal in plain SQL (config.demote_now's moves), on the promoted copies.
DEMOTE = [
    f"UPDATE {FLOOR}.org_promotions SET demoted_at = now(), demoted_by = 'bench' WHERE id = 1",
    f"""
WITH u AS (
    UPDATE {FLOOR}.projects p SET org_id = po.source_org
    FROM {FLOOR}.promoted_orgs po WHERE po.created AND po.org_id = p.org_id
    RETURNING p.uuid, po.source_org AS from_org, po.org_id AS to_org
)
{AUDIT} SELECT 'update', 'projects', u.uuid, ARRAY['org_id'],
               jsonb_build_object('org_id', u.to_org), jsonb_build_object('org_id', u.from_org) FROM u
""",
    f"""
WITH u AS (
    UPDATE {FLOOR}.org_memberships m SET is_primary = false
    FROM {FLOOR}.promoted_orgs po WHERE po.created AND po.org_id = m.org_id AND m.is_primary
    RETURNING m.user_id, m.org_id
)
{AUDIT} SELECT 'update', 'org_memberships', u.user_id, ARRAY['is_primary'],
               jsonb_build_object('org_id', u.org_id, 'is_primary', true),
               jsonb_build_object('org_id', u.org_id, 'is_primary', false) FROM u
""",
    f"""
WITH u AS (
    UPDATE {FLOOR}.org_memberships m SET is_primary = true
    FROM {FLOOR}.promotion_memberships b
    WHERE b.user_id = m.user_id AND b.org_id = m.org_id AND b.is_primary AND NOT m.is_primary
    RETURNING m.user_id, m.org_id
)
{AUDIT} SELECT 'update', 'org_memberships', u.user_id, ARRAY['is_primary'],
               jsonb_build_object('org_id', u.org_id, 'is_primary', false),
               jsonb_build_object('org_id', u.org_id, 'is_primary', true) FROM u
""",
    f"""
WITH d AS (
    DELETE FROM {FLOOR}.org_memberships m USING {FLOOR}.promoted_orgs po
    WHERE po.created AND po.org_id = m.org_id RETURNING m.*
)
{AUDIT} SELECT 'delete', 'org_memberships', d.user_id, NULL, to_jsonb(d), NULL FROM d
""",
    f"DELETE FROM {FLOOR}.promotion_memberships",
    f"""
WITH po AS (DELETE FROM {FLOOR}.promoted_orgs RETURNING *),
d AS (DELETE FROM {FLOOR}.orgs o USING po WHERE po.created AND o.uuid = po.org_id RETURNING o.*)
{AUDIT} SELECT 'delete', 'orgs', d.uuid, NULL, to_jsonb(d), NULL FROM d
""",
]

# The copies' foreign keys, as config's (the copies referencing one another): the "floor with
# foreign keys", which shows what the per-row RI checks cost apart from the rules' triggers.
FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, pg_get_constraintdef(c.oid)
FROM pg_constraint c
WHERE c.contype = 'f' AND c.conrelid = ANY (%s::regclass[])
ORDER BY 1, c.conname
"""


@contextmanager
def backend_cpu(conn: psycopg.Connection) -> Iterator[Callable[[], float]]:
    """``with backend_cpu(conn) as c: ...; c()`` -> CPU seconds (user + system) the connection's
    backend spent in the block, from /proc: unlike wall-clock time, hardly changed by other
    processes' load on shared cores (I/O waits, fsync included, are not in it)."""

    def cpu() -> float:
        with open(f"/proc/{conn.info.backend_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    start = cpu()
    end: list[float] = []
    yield lambda: (end[0] if end else cpu()) - start
    end.append(cpu())


AUDIT_COUNTS = "SELECT action || ' ' || object_type, count(*) FROM {} WHERE id > %s GROUP BY 1 ORDER BY 1"


def _audit(conn: psycopg.Connection, table: str, since: int) -> dict[str, int]:
    return dict(conn.execute(AUDIT_COUNTS.format(table), (since,)).fetchall())  # type: ignore[arg-type]


def _max_audit(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) FROM config.audit_log").fetchone()[0]


def template(bc: BenchCluster, projects: int, per_project: bool) -> str:
    """A 6.4 database with ``projects`` projects over ``ORGS`` orgs and users of every role."""
    key = f"tpl_promo_{projects}_{'pp' if per_project else 'single'}"
    if key in bc._templates:
        return key
    url = bc.create(key, template=bc.template("6.0", projects))
    log(f"building template {key}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO config.orgs (name) SELECT 'bench-org-' || i FROM generate_series(1, %s) i",
            (ORGS - 1,),
        )
        orgs = [r[0] for r in conn.execute("SELECT uuid FROM config.orgs ORDER BY created, name").fetchall()]
        conn.execute(
            "UPDATE config.projects p SET org_id = (%s::uuid[])[1 + substr(p.name, 2)::int %% %s] "
            "WHERE p.name ~ '^p[0-9]+$'",
            (orgs, len(orgs)),
        )
        for i, org in enumerate(orgs):
            for role in ("super_admin", "operator", "read_only"):
                conn.execute(
                    "INSERT INTO config.users (email, password_hash, org_id, role) VALUES (%s, 'x', %s, %s)",
                    (f"{role}-{i}@bench.localhost", org, role),
                )
    set_mode(url, per_project)
    migrate(url, "6.1")
    migrate(url, "6.4")
    with psycopg.connect(url, autocommit=True) as conn:
        # the read-only user of each org is also an operator of the next one
        conn.execute(
            """
            INSERT INTO config.org_memberships (user_id, org_id, role, is_primary)
            WITH o AS (SELECT uuid, row_number() OVER (ORDER BY created, name) - 1 AS i,
                              count(*) OVER () AS n FROM config.orgs)
            SELECT u.uuid, nx.uuid, 'operator', false
            FROM config.users u
            JOIN config.org_memberships m ON m.user_id = u.uuid AND m.is_primary
            JOIN o ON o.uuid = m.org_id JOIN o nx ON nx.i = (o.i + 1) % o.n
            WHERE u.email LIKE 'read_only-%'
            """
        )
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    bc._templates[key] = url
    return key


def floor(
    url: str, foreign_keys: bool = False
) -> tuple[float, float, dict[str, int], dict[str, int], float, float]:
    """(promotion s, reversal s, audit rows of each, backend CPU s of each) of the plain-SQL
    floor (``foreign_keys``: with config's foreign keys on the copies)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in SETUP:
            conn.execute(stmt)
        if foreign_keys:
            fks = conn.execute(FOREIGN_KEYS, ([f"config.{t}" for t in TABLES],)).fetchall()
            for table, definition in fks:
                for t in TABLES:
                    definition = definition.replace(f"REFERENCES config.{t}(", f"REFERENCES {FLOOR}.{t}(")
                conn.execute(f"ALTER TABLE {FLOOR}.{table.split('.')[-1]} ADD {definition}")
        conn.execute("CHECKPOINT")
        with stopwatch() as tp, backend_cpu(conn) as cp:
            with conn.transaction():
                for stmt in PROMOTE:
                    conn.execute(stmt)
        after = _audit(conn, f"{FLOOR}.audit_log", 0)
        top = conn.execute(f"SELECT coalesce(max(id), 0) FROM {FLOOR}.audit_log").fetchone()[0]
        conn.execute("CHECKPOINT")
        with stopwatch() as td, backend_cpu(conn) as cd:
            with conn.transaction():
                for stmt in DEMOTE:
                    conn.execute(stmt)
        back = _audit(conn, f"{FLOOR}.audit_log", top)
        conn.execute(f"DROP SCHEMA {FLOOR} CASCADE")
    return tp(), td(), after, back, cp(), cd()


def real(
    url: str,
) -> tuple[float, float, dict[str, int], dict[str, int], dict[str, Any], float, float]:
    """(promotion s, reversal s, audit rows of each, the promotion's counts, backend CPU s of
    each) of the functions."""
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute(
            "SELECT (SELECT count(*) FROM config.orgs), (SELECT count(*) FROM config.org_memberships), "
            "(SELECT md5(string_agg(uuid::text || org_id::text, ',' ORDER BY uuid)) FROM config.projects)"
        ).fetchone()
        start = _max_audit(conn)
        conn.execute("CHECKPOINT")
        with stopwatch() as tp, backend_cpu(conn) as cp:
            counts = conn.execute("SELECT config.promote_customers(false)").fetchone()[0]
        after = _audit(conn, "config.audit_log", start)
        top = _max_audit(conn)
        conn.execute("CHECKPOINT")
        with stopwatch() as td, backend_cpu(conn) as cd:
            conn.execute("SELECT config.demote_orgs(false)")
        back = _audit(conn, "config.audit_log", top)
        restored = conn.execute(
            "SELECT (SELECT count(*) FROM config.orgs), (SELECT count(*) FROM config.org_memberships), "
            "(SELECT md5(string_agg(uuid::text || org_id::text, ',' ORDER BY uuid)) FROM config.projects)"
        ).fetchone()
    if restored != before:
        raise AssertionError(f"the reversal did not restore the layout: {before} -> {restored}")
    return tp(), td(), after, back, counts, cp(), cd()


def run(bc: BenchCluster, *, projects: int, runs: int) -> Section:
    figs: dict[str, Figure] = {}
    notes: list[str] = []
    for mode in ("per-project", "single"):
        figs[f"p_{mode}"] = Figure(f"promote, {mode} mode", "s", note="config.promote_customers(false)")
        figs[f"pf_{mode}"] = Figure(
            f"promotion floor, {mode} mode", "s", note="plain SQL, trigger-less copies"
        )
        figs[f"pr_{mode}"] = Figure(f"promote / floor, {mode} mode", "x", note="within one run")
        figs[f"d_{mode}"] = Figure(f"demote, {mode} mode", "s", note="config.demote_orgs(false)")
        figs[f"df_{mode}"] = Figure(
            f"reversal floor, {mode} mode", "s", note="plain SQL, trigger-less copies"
        )
        figs[f"dr_{mode}"] = Figure(f"demote / floor, {mode} mode", "x", note="within one run")
        figs[f"pk_{mode}"] = Figure(
            f"promotion floor with foreign keys, {mode} mode", "s", note="config's FKs"
        )
        figs[f"pkr_{mode}"] = Figure(f"promote / floor with foreign keys, {mode} mode", "x")
        figs[f"dk_{mode}"] = Figure(
            f"reversal floor with foreign keys, {mode} mode", "s", note="config's FKs"
        )
        figs[f"dkr_{mode}"] = Figure(f"demote / floor with foreign keys, {mode} mode", "x")
        for k, step in (("p", "promote"), ("d", "demote")):
            figs[f"{k}cr_{mode}"] = Figure(
                f"{step} / floor, backend CPU, {mode} mode", "x", note="CPU seconds, within one run"
            )
            figs[f"{k}kcr_{mode}"] = Figure(
                f"{step} / floor with foreign keys, backend CPU, {mode} mode", "x", note="CPU seconds"
            )
    tpls = {"per-project": template(bc, projects, True), "single": template(bc, projects, False)}
    for i in range(runs):
        for mode in ("per-project", "single") if i % 2 == 0 else ("single", "per-project"):
            name = "bench_promotion"
            url = bc.create(name, template=tpls[mode])
            fp, fd, fa, fb, fcp, fcd = floor(url)
            kp, kd, ka, kb, kcp, kcd = floor(url, foreign_keys=True)
            rp, rd, ra, rb, counts, rcp, rcd = real(url)
            bc.drop(name)
            if not (fa, fb) == (ka, kb) == (ra, rb):
                raise AssertionError(f"{mode}: floor and functions differ: audit {fa} {fb} vs {ra} {rb}")
            figs[f"p_{mode}"].add(rp)
            figs[f"pf_{mode}"].add(fp)
            figs[f"pr_{mode}"].add(rp / fp)
            figs[f"d_{mode}"].add(rd)
            figs[f"df_{mode}"].add(fd)
            figs[f"dr_{mode}"].add(rd / fd)
            figs[f"pk_{mode}"].add(kp)
            figs[f"pkr_{mode}"].add(rp / kp)
            figs[f"dk_{mode}"].add(kd)
            figs[f"dkr_{mode}"].add(rd / kd)
            for k, r, f, fk in (("p", rcp, fcp, kcp), ("d", rcd, fcd, kcd)):
                figs[f"{k}cr_{mode}"].add(r / max(f, 0.01))
                figs[f"{k}kcr_{mode}"].add(r / max(fk, 0.01))
            log(
                f"promotion run {i + 1} {mode}: promote {rp:.2f}s floor {fp:.2f}s (x{rp / fp:.2f}) "
                f"demote {rd:.2f}s floor {fd:.2f}s (x{rd / fd:.2f}) | with FKs: promote floor {kp:.2f}s "
                f"(x{rp / kp:.2f}) demote floor {kd:.2f}s (x{rd / kd:.2f}) | backend CPU: promote "
                f"{rcp:.2f}s floor {fcp:.2f}s with FKs {kcp:.2f}s, demote {rcd:.2f}s floor {fcd:.2f}s "
                f"with FKs {kcd:.2f}s"
            )
            if i == 0:
                notes.append(
                    f"- {mode} mode, the work of each run: promotion {dumps(counts)}; audit rows written, "
                    f"promotion {dumps(ra)}, reversal {dumps(rb)} (the floor's are the same)."
                )
    order = [
        figs[f"{k}_{m}"]
        for m in ("per-project", "single")
        for k in ("p", "pf", "pr", "pk", "pkr", "pcr", "pkcr", "d", "df", "dr", "dk", "dkr", "dcr", "dkcr")
    ]
    section = Section(
        f"6. Promotion of customers to orgs and its reversal ({projects:,} projects)",
        f"{projects:,} projects over {ORGS} orgs, a super admin, an operator and a read-only user per org "
        "(each read-only user also an operator of the next org), at 6.4; per-project mode "
        f"({projects:,} customers becoming orgs) and single mode (a default customer per org: only the "
        "system projects' customers become orgs). The floor does the same moves and audit rows in plain "
        "SQL, one transaction per direction, on trigger-less copies of the tables (module docstring of "
        "`bench/promotion.py`).",
        order,
        notes=notes,
    )
    for mode in ("per-project", "single"):
        section.targets.append(Target(f"promote / floor, {mode} mode", figs[f"pr_{mode}"], "<=", RATIO_LIMIT))
        section.targets.append(Target(f"demote / floor, {mode} mode", figs[f"dr_{mode}"], "<=", RATIO_LIMIT))
    return section


def request_path(bc: BenchCluster, *, projects: int, runs: int, seconds: float) -> Section:
    """The orphan audit and the customers page at 6.1 and at 6.4, interleaved in one run."""
    tpl = bc.template("6.1", projects, per_project=True)
    dbs = {"6.1": "bench_rp61", "6.4": "bench_rp64"}
    urls = {rel: bc.create(db, template=tpl) for rel, db in dbs.items()}
    migrate(urls["6.4"], "6.4")
    password = secrets.token_urlsafe(12)
    email = "operator@bench.localhost"
    orgs: dict[str, str] = {}
    for rel, url in urls.items():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            orgs[rel] = str(
                conn.execute("SELECT uuid FROM config.orgs ORDER BY created LIMIT 1").fetchone()[0]
            )
            create_user(conn, email, password, orgs[rel], "operator")
    labels = {"orphans": "orphan audit", "customers": "customers page of 100"}
    figs: dict[str, Figure] = {}
    for k, label in labels.items():
        for rel in dbs:
            figs[f"{k}_{rel}"] = Figure(f"{label} at {rel}", "req/s")
            figs[f"{k}_{rel}_p99"] = Figure(f"{label} at {rel}: p99", "ms")
        figs[f"{k}_ratio"] = Figure(f"{label}: 6.4 / 6.1 throughput", "x", note="within one run")
    services: dict[str, Service] = {}
    try:
        tokens = {}
        for rel, url in urls.items():
            services[rel] = Service(url, WORKERS)
            r = httpx.post(
                services[rel].base + "/config/v1/login",
                json={"email": email, "password": password},
                timeout=10,
            )
            r.raise_for_status()
            tokens[rel] = r.json()["auth_token"]["access_token"]
        for i in range(runs):
            rels = ("6.1", "6.4") if i % 2 == 0 else ("6.4", "6.1")
            got: dict[str, float] = {}
            for k in labels:
                for rel in rels:
                    svc, token = services[rel], tokens[rel]
                    path = (
                        f"/config/v1/orgs/{orgs[rel]}/projects/?customer_id__isnull=True"
                        if k == "orphans"
                        else "/config/v1/customers/?page_size=100"
                    )
                    body = httpx.get(
                        svc.base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30
                    )
                    body.raise_for_status()
                    assert (body.json() == []) if k == "orphans" else len(body.json()["results"]) == 100
                    _wrk(svc.base + path, token, 2)
                    rps, _p50, p99, bad = _wrk(svc.base + path, token, seconds)
                    if bad:
                        raise RuntimeError(f"{bad} non-2xx answers from {rel} {path}")
                    figs[f"{k}_{rel}"].add(rps)
                    figs[f"{k}_{rel}_p99"].add(p99)
                    got[f"{k}_{rel}"] = rps
                figs[f"{k}_ratio"].add(got[f"{k}_6.4"] / got[f"{k}_6.1"])
                log(
                    f"request path run {i + 1} {k}: 6.1 {got[f'{k}_6.1']:.0f} req/s, "
                    f"6.4 {got[f'{k}_6.4']:.0f} req/s (x{got[f'{k}_6.4'] / got[f'{k}_6.1']:.2f})"
                )
    finally:
        for svc in services.values():
            svc.stop()
        for db in dbs.values():
            bc.drop(db)
    order = [figs[f"{k}{s}"] for k in labels for s in ("_6.1", "_6.1_p99", "_6.4", "_6.4_p99", "_ratio")]
    section = Section(
        f"7. Request path before and after memberships ({projects:,} projects, per-project mode)",
        f"The same 6.1 template, one copy left at 6.1 (users.org_id, users.role) and one upgraded to 6.4 "
        f"(org_memberships), an operator of the org in each, both services up ({WORKERS} uvicorn workers "
        f"each); wrk ({WRK_THREADS} threads, {CONCURRENCY} connections, {int(seconds)} s after a 2 s "
        "warm-up) on one service at a time, 6.1 and 6.4 interleaved in each run.",
        order,
    )
    for k, label in labels.items():
        section.targets.append(Target(f"{label}: 6.4 / 6.1 throughput", figs[f"{k}_ratio"], ">=", 0.9))
    return section


def dumps(obj: Any) -> str:
    import json

    return "`" + json.dumps(obj, sort_keys=True, separators=(", ", ": ")) + "`"
