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
SELECT count(*) AS orphans FROM config.projects WHERE customer_id IS NULL;
