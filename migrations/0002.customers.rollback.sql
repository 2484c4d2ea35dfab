-- Down from release 6.1 to 6.0. As documented: every Customer is deleted. Projects stay,
-- row for row as they were at 6.0 (the association columns go; `modified` was never
-- touched by associations), and every tunable stays as it is, so setting
-- turbine_api_feature_migrate_projects_to_orgs now decides what the next upgrade creates.
-- Not undone by a later upgrade: the customer names, manual groupings and job history.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        -- cron.unschedule raises when the job is missing: only unschedule what exists
        PERFORM cron.unschedule(jobid) FROM cron.job
        WHERE jobname IN ('reconcile-customers', 'prune-cron-history');
    END IF;
END
$$;

-- One audit row for the whole deletion instead of one per customer and per project.
INSERT INTO config.audit_log (action, object_type, before)
SELECT 'downgrade', 'customers',
       jsonb_build_object('from_release', '6.1', 'to_release', '6.0', 'customers_deleted', count(*))
FROM config.customers;

DROP TRIGGER tunables_mode_changed ON config.tunables;
DROP TRIGGER projects_assign_customer ON config.projects;
DROP TRIGGER projects_defer_customer_check ON config.projects;
DROP TRIGGER projects_create_own_customers ON config.projects;
DROP TRIGGER projects_track_orphans ON config.projects;
DROP TRIGGER projects_settle_insert ON config.projects;
DROP TRIGGER projects_settle_update ON config.projects;
DROP TRIGGER projects_settle_delete ON config.projects;

-- Dropping the columns first means no per-project ON DELETE SET NULL updates (and no audit
-- rows for them) when the customers go.
ALTER TABLE config.projects DROP COLUMN customer_id, DROP COLUMN orphaned_at;
DROP TABLE config.customers;
DROP TABLE config.customer_counts;
DROP TABLE config.job_runs;
DROP TABLE config.customers_unsettled;

DROP FUNCTION config.upgrade_blockers(text);
DROP FUNCTION config.switch_customer_mode(boolean, boolean);
DROP FUNCTION config.switch_mode_plan(boolean);
DROP FUNCTION config.switch_mode_now(boolean);
DROP FUNCTION config.on_mode_changed();
DROP FUNCTION config.reconcile_customers(boolean, boolean, text, boolean, integer);
DROP FUNCTION config.reconcile_orphans(boolean, boolean, integer);
DROP FUNCTION config.orphan_is_due(uuid, timestamptz, boolean, timestamptz, uuid);
DROP FUNCTION config.orphans_due_before();
DROP FUNCTION config.projects_settle();
DROP FUNCTION config.settle_unsettled();
DROP FUNCTION config.settle_customers(uuid[]);
DROP FUNCTION config.lock_customers(uuid[]);
DROP FUNCTION config.rename_single_project_customers(uuid[]);
DROP FUNCTION config.misnamed_single_project_customers(uuid[]);
DROP FUNCTION config.give_way_timeout();
DROP FUNCTION config.track_orphans();
DROP FUNCTION config.assign_new_project();
DROP FUNCTION config.create_own_customers();
DROP FUNCTION config.defer_customer_check();
DROP FUNCTION config.own_customer_id(uuid);
DROP FUNCTION config.default_customer(uuid);
DROP FUNCTION config.create_customers(text, uuid[], text[]);
DROP FUNCTION config.customers_guard_name();
DROP FUNCTION config.count_customers();
DROP FUNCTION config.customer_count(text);
DROP FUNCTION config.customers_lock_projects();
DROP FUNCTION config.is_system_project(text);
DROP FUNCTION config.customer_name_candidates(text, uuid);
DROP FUNCTION config.may_name_customer(uuid, boolean, uuid, uuid);
DROP FUNCTION config.api_time(timestamptz);
DROP FUNCTION config.customer_mine(uuid, boolean, uuid);
DROP FUNCTION config.customer_visible(uuid, uuid, boolean, uuid, uuid);
DROP FUNCTION config.org_visible(uuid, boolean, uuid);
DROP FUNCTION config.rolled_back(text, jsonb);
DROP FUNCTION config.job_sources();
DROP FUNCTION config.job_lock_key();
DROP FUNCTION config.per_project_mode();
DROP FUNCTION config.mode_tunable();

CREATE OR REPLACE FUNCTION config.schema_release() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '6.0'::text $$;
