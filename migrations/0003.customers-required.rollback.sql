-- Down from release 6.4 to 6.1: the 6.1 rules and schedule come back; every customer and
-- every association stays exactly as it is (this only takes 0003's own objects away and
-- switches 6.1's triggers on again). Orphans become possible again, and the job is back
-- to re-home them.
-- Not restored: a pg_cron job that did not exist at the upgrade (pg_cron installed while at
-- 6.4); the service's fallback scheduler runs the job then, as on any 6.1 without it.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.schedule_in_database(p.jobname, p.schedule, p.command, p.database, p.username, p.active)
        FROM config.parked_cron_jobs p
        WHERE NOT EXISTS (SELECT 1 FROM cron.job j WHERE j.jobname = p.jobname);
        -- cron.schedule records this node; the job had the node it was scheduled with
        UPDATE cron.job j SET nodename = p.nodename, nodeport = p.nodeport
        FROM config.parked_cron_jobs p
        WHERE j.jobname = p.jobname AND (j.nodename, j.nodeport) IS DISTINCT FROM (p.nodename, p.nodeport);
    END IF;
END
$$;
DROP TABLE config.parked_cron_jobs;

ALTER TABLE config.tunables ENABLE TRIGGER tunables_mode_changed;

DROP TRIGGER customers_keep_projects ON config.customers;
DROP FUNCTION config.refuse_deleting_held_customer();

DROP TRIGGER projects_customer_final ON config.projects;
DROP FUNCTION config.refuse_customer_change();
ALTER TABLE config.projects
    ENABLE TRIGGER projects_assign_customer,
    ENABLE TRIGGER projects_defer_customer_check,
    ENABLE TRIGGER projects_create_own_customers,
    ENABLE TRIGGER projects_track_orphans,
    ALTER COLUMN customer_id DROP NOT NULL,
    DROP CONSTRAINT projects_customer_id_fkey,
    ADD CONSTRAINT projects_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES config.customers (uuid) ON DELETE SET NULL DEFERRABLE INITIALLY IMMEDIATE;
COMMENT ON COLUMN config.projects.customer_id IS 'The customer this project belongs to (release 6.1). NULL means orphan: the job re-homes it.';

CREATE OR REPLACE FUNCTION config.schema_release() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '6.1'::text $$;
