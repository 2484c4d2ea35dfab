-- Health and metrics.

-- name: release
SELECT config.schema_release() AS release;

-- name: last_run
SELECT r.id, r.source, r.started, r.finished, r.skipped, r.error,
       extract(epoch FROM now() - r.finished)::float8 AS seconds_ago
FROM config.job_runs r
ORDER BY r.id DESC
LIMIT 1;

-- name: orphans
-- The number of orphans in every org, which /health and /metrics publish: counted by
-- service_state.orphan_count (SECURITY DEFINER; row-level security hides projects from the
-- runtime role when no request user is signed in, as on these public paths).
SELECT service_state.orphan_count() AS orphans;

-- name: runtime_role
-- What the service's connection may do (checked once per pool, service.db): it should be the
-- runtime role of sql/privileges.sql, neither a superuser nor a role that bypasses row security.
SELECT r.rolname AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls
FROM pg_roles r WHERE r.rolname = current_user;
