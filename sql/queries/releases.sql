-- The pre-upgrade check (service/migrations.py upgrade_blockers, the CLI and the API).

-- name: has_upgrade_blockers
-- The check exists from release 6.1 on.
SELECT to_regprocedure('config.upgrade_blockers(text)') IS NOT NULL AS present;

-- name: upgrade_blockers
-- Every blocker of an upgrade to %(release)s, oldest first, with the reason and the remedy.
SELECT b.blocker, b.org_id AS org, b.org_name, b.project_id AS project, b.project_name, b.since,
       b.reason, b.remedy
FROM config.upgrade_blockers(%(release)s::text) b;

-- name: has_downgrade_blockers
-- The downgrade check exists from release 6.4's memberships on (migrations/0004).
SELECT to_regprocedure('config.downgrade_blockers()') IS NOT NULL AS present;

-- name: downgrade_blockers
-- The users that block a downgrade below memberships (several orgs each), with the remedy.
SELECT d.user_id AS "user", d.email, d.orgs, d.reason, d.remedy FROM config.downgrade_blockers() d;
