-- depends: 0002.customers
-- Release 6.4: customers required, associations final (docs/design.md section 7). Every project
-- is created with a customer and keeps it; a customer holding projects cannot be deleted;
-- nothing can become an orphan, so the background job has nothing left to do and is
-- unscheduled. Releases 6.2 and 6.3 change nothing in this schema: they are the 6.1 schema.
--
-- This migration adds rules on top of 6.1 and switches three 6.1 triggers off; it redefines
-- none of 6.1's functions, so its rollback only has to take its own objects away again.
--
-- Rule map at 6.4:
--   customer required      projects.customer_id NOT NULL; trigger projects_assign_customer off
--   association final      trigger projects_customer_final (config.refuse_customer_change)
--   customers keep theirs  FK projects_customer_id_fkey ON DELETE RESTRICT, trigger
--                          customers_keep_projects (config.refuse_deleting_held_customer)
--   no job                 pg_cron job parked in config.parked_cron_jobs; triggers
--                          projects_track_orphans and tunables_mode_changed off

-- ---------------------------------------------------------------------------
-- Refuse while any project is an orphan, before changing anything
-- ---------------------------------------------------------------------------

-- No project may become an orphan between the check and the change it guards.
LOCK TABLE config.customers, config.projects IN ACCESS EXCLUSIVE MODE;

DO $$
DECLARE
    total integer;
    first text;
BEGIN
    SELECT count(*)::integer,
           string_agg(format('%s/%s (orphan since %s)', b.org_name, b.project_name,
                             to_char(b.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')), ', ')
               FILTER (WHERE b.n <= 5)
    INTO total, first
    FROM (SELECT u.*, row_number() OVER () AS n FROM config.upgrade_blockers('6.4') u) b;
    IF total > 0 THEN
        IF total > 5 THEN
            first := format('%s and %s more', first, total - 5);
        END IF;
        RAISE EXCEPTION 'cannot upgrade to release 6.4: % project(s) have no customer: %; home them with `hierarchy reconcile --force` (or give each a customer), check with `hierarchy migrate --to 6.4 --dry-run`, then upgrade again',
            total, first
            USING ERRCODE = 'HR064',
                  DETAIL = 'SELECT * FROM config.upgrade_blockers(''6.4'') lists every one.';
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Projects: created with a customer, and keep it
-- ---------------------------------------------------------------------------

-- Refuses any change of a project's customer, whoever writes (trigger projects_customer_final).
CREATE FUNCTION config.refuse_customer_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'project % belongs to customer % for good: from release 6.4 a project''s customer cannot be changed',
        OLD.name, (SELECT c.name FROM config.customers c WHERE c.uuid = OLD.customer_id)
        USING ERRCODE = 'check_violation', CONSTRAINT = 'projects_customer_final', COLUMN = 'customer_id',
              HINT = 'Associations are final from 6.4; to regroup projects, downgrade with `hierarchy migrate --to 6.1`.';
END
$$;
COMMENT ON FUNCTION config.refuse_customer_change() IS 'Release 6.4: BEFORE UPDATE OF customer_id trigger refusing any change of a project''s customer (SQLSTATE 23514, constraint projects_customer_final).';

CREATE TRIGGER projects_customer_final BEFORE UPDATE OF customer_id ON config.projects
    FOR EACH ROW WHEN (NEW.customer_id IS DISTINCT FROM OLD.customer_id)
    EXECUTE FUNCTION config.refuse_customer_change();
COMMENT ON TRIGGER projects_customer_final ON config.projects IS 'Release 6.4: a project''s customer cannot be changed (fires in replica mode too: bulk loads included).';

ALTER TABLE config.projects
    ENABLE ALWAYS TRIGGER projects_customer_final,
    -- 6.1's rule 5 gave a project without customer one; from 6.4 the creator names it
    DISABLE TRIGGER projects_assign_customer,
    DISABLE TRIGGER projects_defer_customer_check,
    DISABLE TRIGGER projects_create_own_customers,
    -- nothing can become an orphan any more
    DISABLE TRIGGER projects_track_orphans,
    ALTER COLUMN customer_id SET NOT NULL,
    DROP CONSTRAINT projects_customer_id_fkey,
    ADD CONSTRAINT projects_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES config.customers (uuid) ON DELETE RESTRICT;
COMMENT ON COLUMN config.projects.customer_id IS 'The customer this project belongs to: given when the project is created and final from release 6.4.';

-- ---------------------------------------------------------------------------
-- Customers: one holding projects cannot be deleted
-- ---------------------------------------------------------------------------

-- The foreign key (ON DELETE RESTRICT) is the guarantee; this says how many projects it holds.
CREATE FUNCTION config.refuse_deleting_held_customer() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    held bigint;
BEGIN
    SELECT count(*) INTO held FROM config.projects p WHERE p.customer_id = OLD.uuid;
    IF held > 0 THEN
        RAISE EXCEPTION 'customer % holds % project(s): from release 6.4 a customer holding projects cannot be deleted',
            OLD.name, held
            USING ERRCODE = 'check_violation', CONSTRAINT = 'customers_keep_projects',
                  HINT = 'Delete its projects first; a customer without projects can be deleted.';
    END IF;
    RETURN OLD;
END
$$;
COMMENT ON FUNCTION config.refuse_deleting_held_customer() IS 'Release 6.4: BEFORE DELETE trigger on customers refusing to delete one that holds projects, saying how many (SQLSTATE 23514, constraint customers_keep_projects).';

CREATE TRIGGER customers_keep_projects BEFORE DELETE ON config.customers
    FOR EACH ROW EXECUTE FUNCTION config.refuse_deleting_held_customer();
ALTER TABLE config.customers ENABLE ALWAYS TRIGGER customers_keep_projects;
COMMENT ON TRIGGER customers_keep_projects ON config.customers IS 'Release 6.4: a customer holding projects cannot be deleted (the message says how many).';

-- ---------------------------------------------------------------------------
-- The job has nothing left to do
-- ---------------------------------------------------------------------------

-- A mode change no longer runs the job; the tunable stays, for a downgrade.
ALTER TABLE config.tunables DISABLE TRIGGER tunables_mode_changed;

-- pg_cron's reconcile-customers job, as it was, so a downgrade schedules it exactly again.
CREATE TABLE config.parked_cron_jobs (
    jobname  text PRIMARY KEY,
    schedule text NOT NULL,
    command  text NOT NULL,
    nodename text,
    nodeport integer,
    database text,
    username text,
    active   boolean,
    parked   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE config.parked_cron_jobs IS 'Release 6.4: the pg_cron jobs the upgrade unscheduled (reconcile-customers), restored as they were by the downgrade to 6.1. Empty where pg_cron is not installed.';
COMMENT ON COLUMN config.parked_cron_jobs.jobname IS 'The cron.job jobname.';
COMMENT ON COLUMN config.parked_cron_jobs.schedule IS 'Its cron schedule.';
COMMENT ON COLUMN config.parked_cron_jobs.command IS 'Its SQL command.';
COMMENT ON COLUMN config.parked_cron_jobs.nodename IS 'The cron.job nodename it had.';
COMMENT ON COLUMN config.parked_cron_jobs.nodeport IS 'The cron.job nodeport it had.';
COMMENT ON COLUMN config.parked_cron_jobs.database IS 'The database it ran in.';
COMMENT ON COLUMN config.parked_cron_jobs.username IS 'The role it ran as.';
COMMENT ON COLUMN config.parked_cron_jobs.active IS 'Whether it was active.';
COMMENT ON COLUMN config.parked_cron_jobs.parked IS 'When the upgrade unscheduled it.';

-- prune-cron-history stays: it prunes pg_cron's own history, whatever runs.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        INSERT INTO config.parked_cron_jobs (jobname, schedule, command, nodename, nodeport, database, username, active)
        SELECT j.jobname, j.schedule, j.command, j.nodename, j.nodeport, j.database, j.username, j.active
        FROM cron.job j WHERE j.jobname = 'reconcile-customers';
        PERFORM cron.unschedule(j.jobid) FROM cron.job j WHERE j.jobname = 'reconcile-customers';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION config.schema_release() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '6.4'::text $$;
