"""3. Trigger overhead: bulk insert of N projects with and without ``projects_assign_customer``.

Per run and per mode (tunable false = default mode, true = per-project mode), on a fresh file
copy of an empty 6.1 database: N new projects in one org, loaded in one transaction by

* **COPY** -- one ``COPY config.projects (org_id, name, description) FROM STDIN``;
* **multi-row INSERT** -- ``INSERT ... VALUES (...), (...)`` statements of 1,000 rows each.

once with the association trigger and once with it disabled (``ALTER TABLE ... DISABLE TRIGGER
projects_assign_customer``; every other trigger, the constraints and the indexes stay), in
alternating order; the tables are truncated between loads. The figure of interest is the ratio
with / without, taken within one run. The load data is built in Python before the clock starts.
"""

from __future__ import annotations

import psycopg

from bench.common import BenchCluster, Figure, Section, Target, log, stopwatch

BATCH = 1000


def _data(org: str, n: int) -> tuple[bytes, list[str]]:
    names = [f"b{i:07d}" for i in range(1, n + 1)]
    copy = "".join(f"{org}\t{nm}\tbulk loaded\n" for nm in names).encode()
    stmts = []
    for i in range(0, n, BATCH):
        values = ",".join(f"('{org}','{nm}','bulk loaded')" for nm in names[i : i + BATCH])
        stmts.append(f"INSERT INTO config.projects (org_id, name, description) VALUES {values}")
    return copy, stmts


def _load(conn: psycopg.Connection, method: str, copy: bytes, stmts: list[str]) -> float:
    with stopwatch() as t:
        with conn.transaction():
            if method == "copy":
                with conn.cursor().copy("COPY config.projects (org_id, name, description) FROM STDIN") as cp:
                    cp.write(copy)
            else:
                for s in stmts:
                    conn.execute(s)
    return t()


def _reset(conn: psycopg.Connection, trigger: bool) -> None:
    conn.execute("TRUNCATE config.projects, config.customers, config.audit_log")
    conn.execute(
        "ALTER TABLE config.projects "
        + ("ENABLE" if trigger else "DISABLE")
        + " TRIGGER projects_assign_customer"
    )
    conn.execute("VACUUM ANALYZE config.projects, config.customers, config.audit_log")
    conn.execute("CHECKPOINT")


def run(bc: BenchCluster, *, projects: int, runs: int) -> Section:
    tpl = bc.template("6.1", 0)
    figs: dict[str, Figure] = {}
    for mode, label in (("false", "default mode"), ("true", "per-project mode")):
        for method, mlabel in (("copy", "COPY"), ("insert", "multi-row INSERT")):
            k = f"{mode}_{method}"
            figs[k + "_with"] = Figure(f"{mlabel}, {label}, with trigger", "s")
            figs[k + "_without"] = Figure(f"{mlabel}, {label}, without trigger", "s")
            figs[k + "_ratio"] = Figure(f"{mlabel}, {label}: with / without", "x", note="within one run")
            figs[k + "_rate"] = Figure(f"{mlabel}, {label}, with trigger", "rows/s")
    try:
        for i in range(runs):
            for mode in ("false", "true"):
                url = bc.create("bench_triggers", template=tpl)
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(
                        "UPDATE config.tunables SET value = %s::jsonb "
                        "WHERE name = 'turbine_api_feature_migrate_projects_to_orgs'",
                        (mode,),
                    )
                    org = str(conn.execute("SELECT uuid FROM config.orgs LIMIT 1").fetchone()[0])
                    copy, stmts = _data(org, projects)
                    for method in ("copy", "insert"):
                        k = f"{mode}_{method}"
                        order = (True, False) if i % 2 == 0 else (False, True)
                        got = {}
                        for trigger in order:
                            _reset(conn, trigger)
                            got[trigger] = _load(conn, method, copy, stmts)
                            if trigger:
                                left = conn.execute(
                                    "SELECT count(*) FROM config.projects WHERE customer_id IS NULL"
                                ).fetchone()[0]
                                assert left == 0, f"{left} projects without a customer"
                        figs[k + "_with"].add(got[True])
                        figs[k + "_without"].add(got[False])
                        figs[k + "_ratio"].add(got[True] / got[False])
                        figs[k + "_rate"].add(projects / got[True])
                        log(
                            f"triggers run {i + 1} tunable {mode} {method}: with {got[True]:.2f}s "
                            f"without {got[False]:.2f}s ratio {got[True] / got[False]:.2f}"
                        )
                    conn.execute("ALTER TABLE config.projects ENABLE TRIGGER projects_assign_customer")
                bc.drop("bench_triggers")
    finally:
        bc.drop("bench_triggers")
    section = Section(
        f"3. Trigger overhead (bulk insert of {projects:,} projects)",
        "Fresh empty 6.1 database per run and mode; one transaction per load; every other trigger "
        "(audit, settle), the constraints and the indexes are on in both cases.",
        list(figs.values()),
    )
    for method, mlabel in (("copy", "COPY"), ("insert", "multi-row INSERT")):
        section.targets.append(
            Target(f"{mlabel}, default mode: with / without", figs[f"false_{method}_ratio"], "<=", 2.0)
        )
        section.targets.append(
            Target(f"{mlabel}, per-project mode: with / without", figs[f"true_{method}_ratio"], "<=", 3.0)
        )
    return section
