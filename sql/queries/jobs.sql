-- The background job (config.reconcile_customers) and the mode switch (rule 9).

-- name: reconcile
SELECT config.reconcile_customers(dry_run => %(dry_run)s::boolean, force => %(force)s::boolean,
                                  source => 'api') AS result;

-- name: reconcile_from_scheduler
-- The service's fallback scheduler (where pg_cron does not schedule the job).
SELECT config.reconcile_customers(source => 'service') AS result;

-- name: list_runs
-- Newest first.
SELECT r.id, r.source, r.dry_run, r.forced, r.skipped, r.started, r.finished,
       r.customers_created, r.projects_associated, r.customers_renamed,
       r.orphans_waiting, r.orphans_unresolved, r.error, count(*) OVER () AS total
FROM config.job_runs r
ORDER BY r.id DESC
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;

-- name: switch_mode
SELECT config.switch_customer_mode(per_project => %(per_project)s::boolean,
                                   dry_run => %(dry_run)s::boolean) AS result;

-- name: cron_table_exists
-- pg_cron, if the extension is installed in this database (and migrate could let the cron role
-- answer: service_state.cron_job_state, sql/privileges.sql; pg_cron shows a role only its own
-- jobs, and the job is the cron role's).
SELECT s.present FROM service_state.cron_job_state(0) s;

-- name: cron_scheduled
SELECT s.scheduled FROM service_state.cron_job_state(0) s;

-- name: cron_ran_recently
-- Whether a pg_cron run of reconcile-customers succeeded within the last `seconds` seconds.
-- A schedule whose runs fail, for example a job that names another node's host or port after
-- a failover, does not count.
SELECT s.ran FROM service_state.cron_job_state(%(seconds)s::float8) s;
