"""The job and the statement triggers never JIT-compile their statements (jit = off in their SET)."""

from __future__ import annotations

# every function whose statements join transition tables or whole tables (see 0002, "No JIT")
SET_BASED = {
    "audit_changes",
    "create_customers",
    "default_customer",
    "rename_single_project_customers",
    "settle_customers",
    "lock_customers",
    "projects_settle",
    "reconcile_orphans",
    "reconcile_customers",
    "on_mode_changed",
    "switch_mode_now",
    "switch_mode_plan",
    "switch_customer_mode",
}


def test_set_based_functions_run_without_jit(db):
    rows = db.execute(
        """SELECT p.proname, coalesce('jit=off' = ANY (p.proconfig), false)
           FROM pg_proc p WHERE p.pronamespace = 'config'::regnamespace"""
    ).fetchall()
    jit_off = {name for name, off in rows if off}
    assert SET_BASED <= {name for name, _ in rows}
    assert jit_off >= SET_BASED
