-- Statements only the command line (service/cli.py) runs. Everything else the CLI needs
-- comes from the API's files (auth.set_actor, tunables.*, jobs.*, users.*, orgs.*, health.*).

-- name: reconcile
-- `hierarchy reconcile --dry-run`: the whole plan in one call (the first 1000 changes listed).
-- wait: a person asked for this run, so it waits for a concurrent run (a pg_cron tick)
-- instead of returning "skipped".
SELECT config.reconcile_customers(dry_run => %(dry_run)s::boolean, force => %(force)s::boolean,
                                  source => 'cli', wait => true) AS result;

-- name: reconcile_batch
-- One batch of `hierarchy reconcile`: homes at most batch_size due orphans in this transaction;
-- the result's orphans_due_remaining sizes the progress bar.
SELECT config.reconcile_customers(dry_run => false, force => %(force)s::boolean, source => 'cli',
                                  wait => true, batch_size => %(batch_size)s::integer) AS result;

-- name: orphan_counts
-- Orphans in three groups, for `hierarchy status`: all of them, those not yet due (rule 6,
-- config.orphans_due_before: the periodic job leaves them alone for now), and the overdue
-- ones: due for longer than one pg_cron tick (60 s), or never associated. Overdue orphans
-- mean the job is not doing its work (not scheduled, or failing).
-- count(p.uuid), not count(*): the LEFT JOIN gives one all-NULL row when there is no orphan.
SELECT count(p.uuid) AS total,
       count(p.uuid) FILTER (WHERE p.orphaned_at > g.due_before) AS in_grace,
       count(p.uuid) FILTER (WHERE p.orphaned_at IS NULL OR p.orphaned_at <= g.due_before - interval '60 seconds')
           AS overdue,
       max(g.grace_seconds) AS grace_seconds
FROM (SELECT config.tunable('customer_orphan_grace_seconds')::text::integer AS grace_seconds,
             config.orphans_due_before() AS due_before) g
LEFT JOIN config.projects p ON p.customer_id IS NULL
GROUP BY g.due_before;

-- name: orphans
-- The orphan audit across orgs (the API's is per org: projects?customer_id__isnull=True).
-- %(org)s NULL means every org.
SELECT o.uuid AS org, o.name AS org_name, p.uuid, p.name, p.orphaned_at,
       config.orphan_is_due(p.uuid, p.orphaned_at, false, config.orphans_due_before(), NULL) AS past_grace
FROM config.projects p
JOIN config.orgs o ON o.uuid = p.org_id
WHERE p.customer_id IS NULL
  AND (%(org)s::text IS NULL OR o.name = %(org)s::text)
ORDER BY o.name, p.name, p.uuid;

-- name: org_by_name
SELECT o.uuid, o.name FROM config.orgs o WHERE o.name = %(name)s::text;

-- name: mode
SELECT config.per_project_mode() AS per_project;

-- name: user_by_email
SELECT u.uuid, u.email FROM config.users u WHERE lower(u.email) = lower(%(email)s::text);

-- name: create_token
-- A bearer token made by the owner for a user without a login (the benchmarks: bench/api.py).
-- The runtime role cannot run it (no INSERT on tokens): the service makes tokens only through
-- service_state.log_in, for the proof of the password.
INSERT INTO config.tokens (token_hash, user_id, expires)
VALUES (%(token_hash)s::bytea, %(user_id)s::uuid, now() + make_interval(secs => %(ttl)s::integer));
