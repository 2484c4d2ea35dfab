-- depends: 0001.baseline
-- Release 6.1: Customers, the parallel hierarchy. Every project hangs under its org
-- and under exactly one customer. The rules of docs/design.md section 4 live here, so they
-- hold whoever writes: the HTTP service, a DBA in psql, a bulk load or pg_cron.
--
-- Rule map (where each rule lives in this file):
--   1 system projects      config.is_system_project, assign_new_project, reconcile_orphans
--   2 single mode          config.default_customer, reconcile_orphans
--   3 per-project mode     config.create_customers, reconcile_orphans
--   4 single-project names config.rename_single_project_customers, customers_guard_name(_new_name), config.lock_customers
--   5 associate on insert  trigger projects_assign_customer
--   6 orphans, grace       trigger projects_track_orphans, config.orphans_due_before, config.orphan_is_due
--   7 mode change runs job trigger tunables_mode_changed
--   8 job touches orphans  config.reconcile_orphans only selects customer_id IS NULL
--   9 mode switch          config.switch_customer_mode (holds the projects table: creates wait)
--  10 audit                customers_audit_* (config.count_customers for inserts and deletes; projects_audit_* from 0001)
--
-- Concurrency (docs/dba.md, "Concurrent SQL"): one lock order everywhere -- the mode
-- tunable's row, the job lock, the projects table, project rows, customer rows by uuid
-- (config.lock_customers) -- with customers_delete_lock making DELETE FROM customers fit it.
-- Rule 4 is decided only under the customer's lock, with a snapshot taken after it.

CREATE OR REPLACE FUNCTION config.schema_release() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '6.1'::text $$;

-- ---------------------------------------------------------------------------
-- Facts the functions share, each written once (service/names.py is Python's copy)
-- ---------------------------------------------------------------------------

-- The mode tunable's name (rules 2, 3, 7, 9).
CREATE FUNCTION config.mode_tunable() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 'turbine_api_feature_migrate_projects_to_orgs'::text $$;
COMMENT ON FUNCTION config.mode_tunable() IS 'The name of the mode tunable: true, a customer per project (rule 3); false, one default customer per org (rule 2).';

-- The mode now: true for a customer per project (rule 3), false for the org's default (rule 2).
CREATE FUNCTION config.per_project_mode() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT config.tunable(config.mode_tunable()) = 'true'::jsonb $$;
COMMENT ON FUNCTION config.per_project_mode() IS 'Whether the mode tunable asks for a customer per project (rule 3) rather than one default customer per org (rule 2).';

-- The job's advisory lock: one run at a time; mode changes take it too (lock order: docs/dba.md).
CREATE FUNCTION config.job_lock_key() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT hashtextextended('config.reconcile_customers', 0) $$;
COMMENT ON FUNCTION config.job_lock_key() IS 'The transaction-scoped advisory lock key of the background job: SELECT pg_advisory_xact_lock(config.job_lock_key()) holds every run off.';

-- Who may start a run of the job (job_runs.source and reconcile_customers(source => ...)).
CREATE FUNCTION config.job_sources() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY['cron', 'service', 'api', 'cli', 'upgrade', 'tunable', 'switch', 'sql']::text[]
$$;
COMMENT ON FUNCTION config.job_sources() IS 'The sources of job runs: cron, service (fallback scheduler), api, cli, upgrade (init job), tunable (mode change), switch (switch_customer_mode), sql (a DBA).';

-- A dry run of any change: runs p_statement (a SELECT of one jsonb, given p_args as $1) in a
-- sub-transaction, then rolls it back by raising SQLSTATE HR001 (private to this schema)
-- carrying the result in its DETAIL. Other errors propagate as they are.
CREATE FUNCTION config.rolled_back(p_statement text, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    result jsonb;
    detail text;
BEGIN
    BEGIN
        EXECUTE p_statement INTO result USING p_args;
        RAISE SQLSTATE 'HR001' USING DETAIL = result::text;
    EXCEPTION WHEN SQLSTATE 'HR001' THEN
        GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    END;
    RETURN detail::jsonb;
END
$$;
COMMENT ON FUNCTION config.rolled_back(text, jsonb) IS 'Dry runs: the jsonb result of p_statement (given p_args as $1), with everything it changed rolled back.';

-- ---------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------

CREATE TABLE config.customers (
    uuid                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                text NOT NULL
                        CONSTRAINT customers_name_unique UNIQUE
                        CONSTRAINT customers_name_valid CHECK (name ~ '^[^[:space:][:cntrl:]]+$' AND length(name) <= 255),
    description         text,
    origin              text NOT NULL DEFAULT 'manual'
                        CONSTRAINT customers_origin_known CHECK (origin IN ('system', 'default', 'project', 'manual')),
    default_for_org     uuid CONSTRAINT customers_one_default_per_org UNIQUE
                        REFERENCES config.orgs (uuid) ON DELETE CASCADE,
    created_for_project uuid CONSTRAINT customers_one_per_project UNIQUE,
    created_by          uuid DEFAULT config.current_user_id() REFERENCES config.users (uuid) ON DELETE SET NULL,
    created             timestamptz NOT NULL DEFAULT now(),
    modified            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_origin_links CHECK (
        (origin = 'default') = (default_for_org IS NOT NULL)
        AND (origin IN ('system', 'project')) = (created_for_project IS NOT NULL))
);
COMMENT ON TABLE config.customers IS 'Customers: global objects grouping projects (release 6.1). A later release promotes them to orgs.';
COMMENT ON COLUMN config.customers.name IS 'Unique; spaces are stored as dashes; 1 to 255 characters, no whitespace or control characters. A customer with exactly one project carries that project''s name.';
COMMENT ON COLUMN config.customers.origin IS 'Why it exists: system (hydro, sample_project), default (the org''s single default customer), project (created for one project in per-project mode), manual (created by an administrator).';
COMMENT ON COLUMN config.customers.default_for_org IS 'For origin default: the org whose default customer this is.';
COMMENT ON COLUMN config.customers.created_for_project IS 'For origins system and project: the project it was created for (no foreign key: the customer is deleted with its last project).';
COMMENT ON COLUMN config.customers.created_by IS 'The application user who created it (NULL for the job and plain SQL); operators see the customers they created.';

ALTER TABLE config.projects
    -- DEFERRABLE only so that an INSERT can create its projects' own customers after its rows
    -- (projects_create_own_customers); the check stays immediate, at the end of each statement
    ADD COLUMN customer_id uuid REFERENCES config.customers (uuid) ON DELETE SET NULL DEFERRABLE INITIALLY IMMEDIATE,
    ADD COLUMN orphaned_at timestamptz;
COMMENT ON COLUMN config.projects.customer_id IS 'The customer this project belongs to (release 6.1). NULL means orphan: the job re-homes it.';
COMMENT ON COLUMN config.projects.orphaned_at IS 'When the project lost its customer (NULL for a project never associated); the job waits customer_orphan_grace_seconds after it.';

CREATE INDEX projects_customer_idx ON config.projects (customer_id);
CREATE INDEX projects_orphans_idx ON config.projects (org_id) WHERE customer_id IS NULL;
COMMENT ON INDEX config.projects_orphans_idx IS 'Orphans only: keeps an idle job run and the orphan audit cheap whatever the number of projects.';

CREATE TABLE config.job_runs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text NOT NULL
                        CONSTRAINT job_runs_source_known CHECK (source = ANY (config.job_sources())),
    dry_run             boolean NOT NULL,
    forced              boolean NOT NULL,
    skipped             boolean NOT NULL DEFAULT false,
    started             timestamptz NOT NULL,
    finished            timestamptz NOT NULL DEFAULT clock_timestamp(),
    customers_created   integer NOT NULL DEFAULT 0,
    projects_associated integer NOT NULL DEFAULT 0,
    customers_renamed   integer NOT NULL DEFAULT 0,
    orphans_waiting     integer NOT NULL DEFAULT 0,
    orphans_unresolved  integer NOT NULL DEFAULT 0,
    error               text
);
CREATE INDEX job_runs_started_idx ON config.job_runs (started);
COMMENT ON TABLE config.job_runs IS 'One row per run of config.reconcile_customers; rows older than 7 days are pruned by the job.';
COMMENT ON COLUMN config.job_runs.source IS 'Who started the run: cron, service (fallback scheduler), api, cli, upgrade (init job), tunable (mode change), switch (switch_customer_mode), sql (a DBA).';
COMMENT ON COLUMN config.job_runs.dry_run IS 'true for a dry run: the counts are what it would have done; nothing changed.';
COMMENT ON COLUMN config.job_runs.forced IS 'true when the run ignored the orphan grace period.';
COMMENT ON COLUMN config.job_runs.started IS 'When the run started (clock time, not transaction start).';
COMMENT ON COLUMN config.job_runs.finished IS 'When the run finished.';
COMMENT ON COLUMN config.job_runs.customers_created IS 'Customers the run created.';
COMMENT ON COLUMN config.job_runs.projects_associated IS 'Orphans the run gave a customer.';
COMMENT ON COLUMN config.job_runs.customers_renamed IS 'Customers renamed after their single project (rule 4) during the run.';
COMMENT ON COLUMN config.job_runs.skipped IS 'true when another run held the lock, so this one did nothing.';
COMMENT ON COLUMN config.job_runs.orphans_waiting IS 'Orphans left after the run (within their grace period, or unresolved).';
COMMENT ON COLUMN config.job_runs.orphans_unresolved IS 'Due orphans the run could not home (no free customer name); should stay 0.';
COMMENT ON COLUMN config.job_runs.error IS 'The error that stopped the run, if any (the run''s changes were rolled back).';

CREATE TABLE config.customers_unsettled (
    customer_id uuid PRIMARY KEY,
    queued      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE config.customers_unsettled IS 'Customers whose rule-4 name or empty-customer cleanup had to be skipped because a concurrent transaction held them (it was adding a project, or renaming to the same name); the next statement that settles customers (config.settle_unsettled), or the next job run, settles them. Empty when nothing is pending.';
COMMENT ON COLUMN config.customers_unsettled.customer_id IS 'The customer to settle (no foreign key: a customer deleted meanwhile is simply skipped).';
COMMENT ON COLUMN config.customers_unsettled.queued IS 'When a transaction left it for the job.';

-- ---------------------------------------------------------------------------
-- Who may see and change a customer (the API's scoping: docs/design.md section 5)
-- ---------------------------------------------------------------------------

-- Without all_orgs a user sees its own org's projects only. sql/queries/customers.sql calls
-- these three in the statements that read or write, and the planner inlines them; the org
-- statements (sql/queries/orgs.sql) run at 6.0 too and keep their predicate inline.
CREATE FUNCTION config.org_visible(p_org uuid, p_all_orgs boolean, p_user_org uuid) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT p_all_orgs OR p_org = p_user_org $$;
COMMENT ON FUNCTION config.org_visible(uuid, boolean, uuid) IS 'Whether a user (all_orgs, its org) may see an org''s projects: all_orgs, or its own org.';

-- A customer is global: a user sees it with all_orgs, when it created it, or when the
-- customer holds a project of the user's org.
CREATE FUNCTION config.customer_visible(p_customer uuid, p_created_by uuid, p_all_orgs boolean,
                                        p_user_org uuid, p_user_id uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT p_all_orgs OR p_created_by = p_user_id
           OR EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = p_customer AND p.org_id = p_user_org)
$$;
COMMENT ON FUNCTION config.customer_visible(uuid, uuid, boolean, uuid, uuid) IS 'Whether a user (all_orgs, its org, its uuid) sees a customer: all_orgs, its creator, or its org holds one of the customer''s projects.';

-- A customer named in a project's body must be one the user sees (none named is fine).
CREATE FUNCTION config.may_name_customer(p_customer uuid, p_all_orgs boolean, p_user_org uuid, p_user_id uuid)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT p_customer IS NULL
           OR EXISTS (SELECT 1 FROM config.customers c
                      WHERE c.uuid = p_customer
                        AND config.customer_visible(c.uuid, c.created_by, p_all_orgs, p_user_org, p_user_id))
$$;
COMMENT ON FUNCTION config.may_name_customer(uuid, boolean, uuid, uuid) IS 'Whether a user may name this customer for a project (create, update): none named, or one it sees (config.customer_visible).';

-- A user may change or delete a customer it sees with all_orgs or when it created it.
CREATE FUNCTION config.customer_mine(p_created_by uuid, p_all_orgs boolean, p_user_id uuid) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT p_all_orgs OR p_created_by IS NOT DISTINCT FROM p_user_id $$;
COMMENT ON FUNCTION config.customer_mine(uuid, boolean, uuid) IS 'Whether a user may change or delete a customer it sees: all_orgs, or it created the customer (403 otherwise).';

-- The customers lists write their JSON in SQL (sql/queries/customers.sql), so a time is
-- written as the API writes the ones psycopg reads and msgspec encodes: the session's time
-- zone, `Z` for UTC, six digits of microseconds only when they are not zero. Inlined.
CREATE FUNCTION config.api_time(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT replace(to_char(p_at, CASE WHEN date_trunc('second', p_at) = p_at
                                      THEN 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'
                                      ELSE 'YYYY-MM-DD"T"HH24:MI:SS.USTZH:TZM' END), '+00:00', 'Z')
$$;
COMMENT ON FUNCTION config.api_time(timestamptz) IS 'A time as the API writes it in JSON (ISO 8601, the session''s zone, Z for UTC, microseconds when not zero): for lists whose JSON SQL writes.';

-- ---------------------------------------------------------------------------
-- Naming
-- ---------------------------------------------------------------------------

-- The names a customer made for `name` may take, in order of preference: the name itself,
-- then the name with the key's first 8 hex digits, then with the whole key. Deterministic,
-- so a collision never fails the job and never flip-flops.
-- One expression, no FROM: the planner inlines it into the calling statement (a function
-- with a FROM clause is called per row, about 15 µs each, which the job and the settle
-- trigger paid for every project).
CREATE FUNCTION config.customer_name_candidates(p_name text, p_key uuid) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY[left(replace(p_name, ' ', '-'), 255),
                 left(replace(p_name, ' ', '-'), 246) || '-' || left(p_key::text, 8),
                 left(replace(p_name, ' ', '-'), 218) || '-' || p_key::text]
$$;
COMMENT ON FUNCTION config.customer_name_candidates(text, uuid) IS 'Rule 4 naming: the customer names derived from a project (or org) name, most preferred first.';

-- Rule 1: the projects that always get a customer of their own.
CREATE FUNCTION config.is_system_project(p_name text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT p_name IN ('hydro', 'sample_project') $$;
COMMENT ON FUNCTION config.is_system_project(text) IS 'Rule 1: hydro and sample_project always get one customer each (origin system).';

-- ---------------------------------------------------------------------------
-- Customer guards
-- ---------------------------------------------------------------------------

-- Spaces become dashes; a single-project customer keeps its project's name (rule 4).
CREATE FUNCTION config.customers_guard_name() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    only_project record;
BEGIN
    NEW.name := replace(NEW.name, ' ', '-');
    IF TG_OP = 'UPDATE' THEN
        IF NEW.name IS DISTINCT FROM OLD.name OR NEW.description IS DISTINCT FROM OLD.description THEN
            NEW.modified := now();
        END IF;
        IF NEW.name IS DISTINCT FROM OLD.name THEN
            SELECT min(p.name) AS name, (array_agg(p.uuid))[1] AS uuid, count(*) AS n INTO only_project
            FROM (SELECT name, uuid FROM config.projects WHERE customer_id = NEW.uuid LIMIT 2) p;
            IF only_project.n = 1
               AND NEW.name <> ALL (config.customer_name_candidates(only_project.name, only_project.uuid)) THEN
                RAISE EXCEPTION 'customer % has exactly one project (%): its name follows the project; rename the project instead',
                    OLD.name, only_project.name
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'customers_single_project_name';
            END IF;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION config.customers_guard_name() IS 'BEFORE trigger on customers: spaces to dashes, modified bookkeeping, rule 4 (a single-project customer is named after its project).';

-- On INSERT the function only turns spaces into dashes: the WHEN clause calls it only for a
-- name with a space, so the job and per-project bulk loads, which insert a customer per
-- project, pay no PL/pgSQL call per row.
CREATE TRIGGER customers_guard_name BEFORE UPDATE ON config.customers
    FOR EACH ROW EXECUTE FUNCTION config.customers_guard_name();
CREATE TRIGGER customers_guard_new_name BEFORE INSERT ON config.customers
    FOR EACH ROW WHEN (strpos(NEW.name, ' ') > 0) EXECUTE FUNCTION config.customers_guard_name();
COMMENT ON TRIGGER customers_guard_name ON config.customers IS 'Spaces to dashes; refuses renaming a single-project customer away from its project''s name.';
COMMENT ON TRIGGER customers_guard_new_name ON config.customers IS 'Spaces to dashes in the name of a new customer.';

-- Lock order (docs/dba.md): a statement locks its project rows before any customer row,
-- and customer rows in uuid order. DELETE FROM customers cannot follow it (PostgreSQL locks
-- the customer, then ON DELETE SET NULL locks its projects), so it first takes the projects
-- table in EXCLUSIVE mode: it waits for every transaction that changed or locked projects and
-- keeps new ones out until it commits (reads go on), so no transaction can hold one of its
-- projects while waiting for one of its customers. The rules' own
-- deletions of customers they know to be empty set hierarchy.internal_delete and skip it.
CREATE FUNCTION config.customers_lock_projects() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('hierarchy.internal_delete', true) IS DISTINCT FROM 'on' THEN
        LOCK TABLE config.projects IN EXCLUSIVE MODE;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION config.customers_lock_projects() IS 'BEFORE DELETE statement trigger on customers: takes config.projects in EXCLUSIVE mode, so a deletion never deadlocks with a project change (see the lock order in docs/dba.md).';

CREATE TRIGGER customers_delete_lock BEFORE DELETE ON config.customers
    FOR EACH STATEMENT EXECUTE FUNCTION config.customers_lock_projects();
COMMENT ON TRIGGER customers_delete_lock ON config.customers IS 'Deleting customers first waits for (and then holds off) changes to projects: the lock order''s one exception made safe.';

-- (the audit of new and deleted customers is written with their count: see "Customer counts")
CREATE TRIGGER customers_audit_update AFTER UPDATE ON config.customers REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('modified');
COMMENT ON TRIGGER customers_audit_update ON config.customers IS 'Rule 10: audit_log rows for changed customers.';

-- ---------------------------------------------------------------------------
-- Customer counts
-- ---------------------------------------------------------------------------

-- How many customers of each origin exist, for the paginated list's `count` without counting
-- 100,000 rows per page. Insert-only: every statement that creates, deletes or re-labels
-- customers appends its net change per origin (no row is ever updated, so concurrent writers
-- never wait on each other), and the sum over a transaction's snapshot is exactly what
-- count(*) would see in it.
CREATE TABLE config.customer_counts (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin text NOT NULL,
    delta  bigint NOT NULL
);
COMMENT ON TABLE config.customer_counts IS 'Net changes of the number of customers per origin; sum(delta) is the count. Written by config.count_customers (triggers customers_audit_insert/_delete, customers_count_update/_truncate), which also compacts it.';
COMMENT ON COLUMN config.customer_counts.origin IS 'The origin whose count changed.';
COMMENT ON COLUMN config.customer_counts.delta IS 'By how much (negative for deletions and re-labelled customers).';

-- Appends one statement's net change per origin; for new and deleted customers it also writes
-- their audit rows (rule 10, as config.audit_changes would) in the same statement: one trigger
-- per statement instead of two, which the per-project bulk load pays once per project. When
-- the statement's rows pass a multiple of 256 ids, a read-committed transaction that can take
-- the compaction lock folds the rows into one per origin (others skip: the lock is tried,
-- never waited for).
CREATE FUNCTION config.count_customers() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    crossed boolean;  -- whether this statement's rows passed a multiple of 256 ids
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM config.customer_counts;
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        WITH audit AS (
            INSERT INTO config.audit_log (action, object_type, object_id, after)
            SELECT 'insert', 'customers', n.uuid, to_jsonb(n) FROM new_rows n
        ), added AS (
            INSERT INTO config.customer_counts (origin, delta)
            SELECT n.origin, count(*) FROM new_rows n GROUP BY n.origin
            RETURNING id
        )
        SELECT max(id) / 256 > (min(id) - 1) / 256 INTO crossed FROM added;
    ELSIF TG_OP = 'DELETE' THEN
        WITH audit AS (
            INSERT INTO config.audit_log (action, object_type, object_id, before)
            SELECT 'delete', 'customers', o.uuid, to_jsonb(o) FROM old_rows o
        ), added AS (
            INSERT INTO config.customer_counts (origin, delta)
            SELECT o.origin, -count(*) FROM old_rows o GROUP BY o.origin
            RETURNING id
        )
        SELECT max(id) / 256 > (min(id) - 1) / 256 INTO crossed FROM added;
    ELSE
        -- an UPDATE of no row (settle steps that found nothing to change) counts nothing
        IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
            RETURN NULL;
        END IF;
        -- EXECUTE: planned with the transition tables' real sizes (as in audit_changes)
        EXECUTE $sql$
        WITH added AS (
            INSERT INTO config.customer_counts (origin, delta)
            SELECT d.origin, sum(d.delta)
            FROM new_rows n JOIN old_rows o USING (uuid)
            CROSS JOIN LATERAL (VALUES (o.origin, -1), (n.origin, 1)) AS d (origin, delta)
            WHERE o.origin <> n.origin
            GROUP BY d.origin
            HAVING sum(d.delta) <> 0
            RETURNING id
        )
        SELECT max(id) / 256 > (min(id) - 1) / 256 FROM added
        $sql$ INTO crossed;
    END IF;
    IF crossed AND current_setting('transaction_isolation') = 'read committed'
       AND pg_try_advisory_xact_lock(hashtextextended('config.customer_counts', 0)) THEN
        WITH gone AS (DELETE FROM config.customer_counts RETURNING origin, delta)
        INSERT INTO config.customer_counts (origin, delta)
        SELECT g.origin, sum(g.delta) FROM gone g GROUP BY g.origin HAVING sum(g.delta) <> 0;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION config.count_customers() IS 'AFTER statement trigger on customers: appends the net change of the number of customers per origin to customer_counts, and writes the audit rows of new and deleted customers.';

-- The number of customers (of one origin, or all), as count(*) would say in this snapshot.
CREATE FUNCTION config.customer_count(p_origin text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(delta), 0)::bigint FROM config.customer_counts WHERE p_origin IS NULL OR origin = p_origin
$$;
COMMENT ON FUNCTION config.customer_count(text) IS 'How many customers exist (of origin p_origin, or all when NULL), from customer_counts.';

CREATE TRIGGER customers_audit_insert AFTER INSERT ON config.customers REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.count_customers();
CREATE TRIGGER customers_count_update AFTER UPDATE ON config.customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.count_customers();
CREATE TRIGGER customers_audit_delete AFTER DELETE ON config.customers REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.count_customers();
CREATE TRIGGER customers_count_truncate AFTER TRUNCATE ON config.customers
    FOR EACH STATEMENT EXECUTE FUNCTION config.count_customers();
COMMENT ON TRIGGER customers_audit_insert ON config.customers IS 'Rule 10: audit_log rows for new customers; counts them in customer_counts.';
COMMENT ON TRIGGER customers_count_update ON config.customers IS 'Moves re-labelled customers between origins in customer_counts.';
COMMENT ON TRIGGER customers_audit_delete ON config.customers IS 'Rule 10: audit_log rows for deleted customers; counts them out of customer_counts.';
COMMENT ON TRIGGER customers_count_truncate ON config.customers IS 'Empties customer_counts with the customers.';

-- ---------------------------------------------------------------------------
-- Creating customers
-- ---------------------------------------------------------------------------

-- Creates one customer per key (a project for origins system/project, an org for origin
-- default) named from the matching name; a name already taken falls back to the next
-- candidate, so this never fails on a name. Keys that already have their customer are
-- skipped. Returns the uuids of the customers it created (the job deletes those it ends
-- up not needing).
CREATE FUNCTION config.create_customers(p_origin text, p_keys uuid[], p_names text[]) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    level   integer;
    made    uuid[];
    created uuid[] := '{}';
BEGIN
    FOR level IN 1..3 LOOP
        WITH inserted AS (
            INSERT INTO config.customers (name, origin, default_for_org, created_for_project)
            SELECT (config.customer_name_candidates(u.name, u.key))[level], p_origin,
                   CASE WHEN p_origin = 'default' THEN u.key END,
                   CASE WHEN p_origin <> 'default' THEN u.key END
            FROM unnest(p_keys, p_names) AS u (key, name)
            ORDER BY u.key
            -- A key that already has its customer conflicts on customers_one_per_project or
            -- customers_one_default_per_org and is skipped, like a taken name: no anti-join with
            -- customers, whose cached generic plan (made while the table was small) would scan
            -- the whole table on every call -- once per row during a bulk load.
            ON CONFLICT DO NOTHING
            RETURNING uuid
        )
        SELECT coalesce(array_agg(uuid), '{}') INTO made FROM inserted;
        created := created || made;
        EXIT WHEN cardinality(created) >= cardinality(p_keys);
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION config.create_customers(text, uuid[], text[]) IS 'Set-based creation of customers for projects (origin system/project) or orgs (origin default) with collision-free deterministic names; returns the uuids created.';

-- Rule 2: the org's single default customer, created when missing. The row is returned
-- locked FOR KEY SHARE: a concurrent deletion finishes first (and we create a new one) or
-- waits for our commit, so a project is never pointed at a customer that is going away.
CREATE FUNCTION config.default_customer(p_org_id uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    found uuid;
BEGIN
    FOR attempt IN 1..5 LOOP
        SELECT uuid INTO found FROM config.customers WHERE default_for_org = p_org_id FOR KEY SHARE;
        EXIT WHEN found IS NOT NULL;
        PERFORM config.create_customers('default', ARRAY[p_org_id],
                                        ARRAY[(SELECT name || '-default' FROM config.orgs WHERE uuid = p_org_id)]);
    END LOOP;
    RETURN found;  -- NULL only when no name could be had: the project stays an orphan for the job
END
$$;
COMMENT ON FUNCTION config.default_customer(uuid) IS 'Rule 2: the uuid of the org''s default customer (named <org>-default), created when missing.';

-- ---------------------------------------------------------------------------
-- Project triggers
-- ---------------------------------------------------------------------------

-- Rule 5: a new project gets its customer in the statement that creates it; an explicit
-- customer_id wins. Set-based, so INSERT, multi-row INSERT and COPY pay one statement for
-- all their rows' customers rather than one per row:
--   before the statement  projects_defer_customer_check defers the foreign-key check;
--   each row              projects_assign_customer points the project at the org's default
--                         customer (single mode), or at the uuid its own customer will have
--                         (config.own_customer_id: system projects, per-project mode);
--   after the statement   projects_create_own_customers creates those customers in one
--                         INSERT and makes the check immediate again, so it runs right then.

-- The uuid of the customer a new project gets for itself: derived from the project's uuid, so
-- the statement trigger knows which customer_id values the row trigger wrote.
CREATE FUNCTION config.own_customer_id(p_project uuid) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT md5('config.customers:' || p_project::text)::uuid $$;
COMMENT ON FUNCTION config.own_customer_id(uuid) IS 'Rule 5: the uuid of the customer created for a new project of its own (system projects, per-project mode).';

CREATE FUNCTION config.defer_customer_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SET CONSTRAINTS config.projects_customer_id_fkey DEFERRED;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION config.defer_customer_check() IS 'Rule 5: BEFORE INSERT statement trigger deferring projects_customer_id_fkey until projects_create_own_customers has made the new projects'' customers.';

CREATE TRIGGER projects_defer_customer_check BEFORE INSERT ON config.projects
    FOR EACH STATEMENT EXECUTE FUNCTION config.defer_customer_check();
COMMENT ON TRIGGER projects_defer_customer_check ON config.projects IS 'Rule 5: the foreign-key check of new projects waits for their customers (end of the same statement).';

CREATE FUNCTION config.assign_new_project() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.orphaned_at := NULL;
    IF NEW.customer_id IS NOT NULL THEN
        RETURN NEW;
    END IF;
    IF config.is_system_project(NEW.name) OR config.per_project_mode() THEN
        NEW.customer_id := config.own_customer_id(NEW.uuid);  -- created after the statement
        RETURN NEW;
    END IF;
    -- the org's default customer, pinned as default_customer does; created when missing
    SELECT uuid INTO NEW.customer_id FROM config.customers WHERE default_for_org = NEW.org_id FOR KEY SHARE;
    IF NEW.customer_id IS NULL THEN
        NEW.customer_id := config.default_customer(NEW.org_id);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION config.assign_new_project() IS 'Rule 5: BEFORE INSERT trigger giving a new project its customer by rules 1 to 3 (its own one is created by projects_create_own_customers).';

CREATE TRIGGER projects_assign_customer BEFORE INSERT ON config.projects
    FOR EACH ROW EXECUTE FUNCTION config.assign_new_project();
COMMENT ON TRIGGER projects_assign_customer ON config.projects IS 'Rule 5: associates every new project (INSERT or COPY) in the same transaction.';

-- Creates, in one INSERT per name level, the customers the row trigger promised (rules 1 and
-- 3), named after their projects (rule 4: the first free candidate), then makes the foreign-key
-- check immediate again, which runs it for this statement's rows. A project whose customer
-- could not be made (a customer made for its uuid already exists, or no name was free) is
-- pointed at the existing one, or left an orphan for the job.
CREATE FUNCTION config.create_own_customers() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    wanted integer;
    made   integer := 0;
    n      integer;
    level  integer;
BEGIN
    SELECT count(*) INTO wanted FROM new_rows r WHERE r.customer_id = config.own_customer_id(r.uuid);
    FOR level IN 1..3 LOOP
        EXIT WHEN made >= wanted;
        -- EXECUTE: planned with the transition table's real size (one row from the API,
        -- a million from a COPY)
        EXECUTE $sql$
        INSERT INTO config.customers (uuid, name, origin, created_for_project)
        SELECT r.customer_id, (config.customer_name_candidates(r.name, r.uuid))[$1],
               CASE WHEN config.is_system_project(r.name) THEN 'system' ELSE 'project' END, r.uuid
        FROM new_rows r
        WHERE r.customer_id = config.own_customer_id(r.uuid)
          -- the first level needs no anti-join (ON CONFLICT skips what exists): a multi-row
          -- INSERT would scan the growing customers table once per statement
          AND ($1 = 1 OR NOT EXISTS (SELECT 1 FROM config.customers c WHERE c.uuid = r.customer_id))
        ORDER BY r.uuid
        ON CONFLICT DO NOTHING
        $sql$ USING level;
        GET DIAGNOSTICS n = ROW_COUNT;
        made := made + n;
    END LOOP;
    IF made < wanted THEN
        -- one left without a customer was never associated: due to the job at once (track_orphans)
        PERFORM set_config('hierarchy.own_customer_failed', 'on', true);
        EXECUTE $sql$
        UPDATE config.projects p
        SET customer_id = (SELECT c.uuid FROM config.customers c WHERE c.created_for_project = p.uuid)
        FROM new_rows r
        WHERE p.uuid = r.uuid AND r.customer_id = config.own_customer_id(r.uuid)
          AND NOT EXISTS (SELECT 1 FROM config.customers c WHERE c.uuid = r.customer_id)
        $sql$;
        PERFORM set_config('hierarchy.own_customer_failed', '', true);
    END IF;
    SET CONSTRAINTS config.projects_customer_id_fkey IMMEDIATE;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION config.create_own_customers() IS 'Rule 5: AFTER INSERT statement trigger creating, set-based, the own customers of the statement''s new projects, then running the foreign-key check.';

-- fires before projects_settle_insert (statement triggers fire in name order)
CREATE TRIGGER projects_create_own_customers AFTER INSERT ON config.projects REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.create_own_customers();
COMMENT ON TRIGGER projects_create_own_customers ON config.projects IS 'Rule 5: creates the new projects'' own customers (system projects, per-project mode) in one statement.';

-- Rule 6 bookkeeping: remember when a project became an orphan.
CREATE FUNCTION config.track_orphans() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.customer_id IS NULL AND OLD.customer_id IS NOT NULL THEN
        -- a new project whose own customer could not be made never had one (create_own_customers)
        NEW.orphaned_at := CASE WHEN current_setting('hierarchy.own_customer_failed', true) = 'on' THEN NULL ELSE now() END;
    ELSIF NEW.customer_id IS NOT NULL THEN
        NEW.orphaned_at := NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION config.track_orphans() IS 'Rule 6: BEFORE UPDATE OF customer_id trigger setting orphaned_at (also fires for ON DELETE SET NULL).';

-- The WHEN clause is exactly when the function changes something (a project losing its
-- customer, or one with orphaned_at getting a customer): the job's association of a project
-- never orphaned before, row after row, calls no PL/pgSQL.
CREATE TRIGGER projects_track_orphans BEFORE UPDATE OF customer_id ON config.projects
    FOR EACH ROW
    WHEN ((NEW.customer_id IS NULL AND OLD.customer_id IS NOT NULL)
          OR (NEW.customer_id IS NOT NULL AND NEW.orphaned_at IS NOT NULL))
    EXECUTE FUNCTION config.track_orphans();
COMMENT ON TRIGGER projects_track_orphans ON config.projects IS 'Rule 6: records when a project lost its customer.';

-- How long an automatic step that could close a lock cycle waits before it gives way: a
-- fifth of deadlock_timeout (so it gives up before anyone's deadlock check runs), or the
-- caller's own lock_timeout when that is shorter.
CREATE FUNCTION config.give_way_timeout() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT (CASE WHEN own > 0 THEN least(own, wait) ELSE wait END)::text || 'ms'
    FROM (SELECT greatest(1, (extract(epoch FROM current_setting('deadlock_timeout')::interval) * 200)::integer) AS wait,
                 (extract(epoch FROM current_setting('lock_timeout')::interval) * 1000)::integer AS own) t
$$;
COMMENT ON FUNCTION config.give_way_timeout() IS 'The lock_timeout (a fifth of deadlock_timeout, or a shorter lock_timeout of the caller) under which a rule 4 rename waits for a name before leaving it to the job.';

-- Rule 4's question, asked once: which of the given customers hold exactly one project and do
-- not carry one of the names rule 4 gives it (config.customer_name_candidates).
CREATE FUNCTION config.misnamed_single_project_customers(p_customers uuid[])
RETURNS TABLE (uuid uuid, name text, project_name text, project_id uuid)
LANGUAGE sql STABLE AS $$
    SELECT c.uuid, c.name, one.names[1], one.ids[1]
    FROM config.customers c
    CROSS JOIN LATERAL (
        SELECT array_agg(p.name) AS names, array_agg(p.uuid) AS ids
        FROM (SELECT x.name, x.uuid FROM config.projects x WHERE x.customer_id = c.uuid LIMIT 2) p
    ) one
    WHERE c.uuid = ANY (p_customers) AND cardinality(one.ids) = 1
      AND c.name <> ALL (config.customer_name_candidates(one.names[1], one.ids[1]))
$$;
COMMENT ON FUNCTION config.misnamed_single_project_customers(uuid[]) IS 'Rule 4: the given customers that hold exactly one project but do not carry its name (with that project).';

-- Rule 4 for a set of customers: each one with exactly one project takes that project's
-- name (first free candidate). Returns how many it renamed.
CREATE FUNCTION config.rename_single_project_customers(p_customers uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    level   integer;
    renamed integer;
    total   integer := 0;
    caller_timeout text := current_setting('lock_timeout');
BEGIN
    -- Most calls find nothing to rename: say so in one statement rather than three, each in
    -- a sub-transaction (the job's tick settles the default customer every time).
    IF NOT EXISTS (SELECT 1 FROM config.misnamed_single_project_customers(p_customers)) THEN
        RETURN 0;
    END IF;
    -- A rename gives way rather than wait: the transaction holding the wanted name's index
    -- entry uncommitted (a customer it created or renamed) may be waiting for a row or a name
    -- this statement holds. Waiting less than deadlock_timeout, we are the one who gives up,
    -- before the deadlock detector aborts the other transaction.
    PERFORM set_config('lock_timeout', config.give_way_timeout(), true);
    FOR level IN 1..3 LOOP
        BEGIN
            WITH wanted AS (
                SELECT m.uuid, (config.customer_name_candidates(m.project_name, m.project_id))[level] AS name
                FROM config.misnamed_single_project_customers(p_customers) m
            )
            UPDATE config.customers c SET name = w.name
            FROM (SELECT DISTINCT ON (name) uuid, name FROM wanted ORDER BY name, uuid) w
            WHERE c.uuid = w.uuid
              AND NOT EXISTS (SELECT 1 FROM config.customers taken WHERE taken.name = w.name)
              -- a concurrent transaction renaming a customer to the same name holds this
              -- lock: waiting for its uncommitted index entry could deadlock; the job settles
              -- this customer instead (config.customers_unsettled)
              AND pg_try_advisory_xact_lock(hashtextextended('config.customers.name:' || w.name, 0))
              -- name is a key column (customers_name_unique): a rename needs the row's FOR
              -- UPDATE lock, which conflicts with the FOR KEY SHARE of a transaction adding a
              -- project to it right now. Never wait for that one (it would wait for our lock
              -- in its own settle step: a deadlock); it settles the customer after us.
              AND c.uuid IN (SELECT l.uuid FROM config.customers l WHERE l.uuid IN (SELECT uuid FROM wanted)
                             FOR UPDATE SKIP LOCKED);
            GET DIAGNOSTICS renamed = ROW_COUNT;
            total := total + renamed;
        EXCEPTION
            WHEN unique_violation THEN
                NULL;  -- a concurrent transaction took a name: the next level's candidates are distinct
            WHEN lock_not_available OR deadlock_detected THEN
                -- one holds a name uncommitted (we waited give_way_timeout for it): give way,
                -- and leave the rest to the job, which gives the first free candidate
                EXIT;
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', caller_timeout, true);
    -- what could not be renamed without waiting is left to the next job run
    INSERT INTO config.customers_unsettled (customer_id)
    SELECT m.uuid FROM config.misnamed_single_project_customers(p_customers) m
    ON CONFLICT DO NOTHING;
    RETURN total;
END
$$;
COMMENT ON FUNCTION config.rename_single_project_customers(uuid[]) IS 'Rule 4: names each given customer that has exactly one project after that project.';

-- Locks the given customers in uuid order, the second half of the lock order (projects
-- first). The rules decide about a customer only while holding this lock and with a snapshot
-- taken after it, so of two transactions changing one customer's projects the later one
-- sees what the earlier one committed: rule 4 cannot be settled on a stale picture (write
-- skew). FOR NO KEY UPDATE does not conflict with the FOR KEY SHARE of foreign-key checks,
-- so projects keep joining a customer while it is locked (a rename, a key update, takes FOR
-- UPDATE only when that needs no wait: rename_single_project_customers).
-- An auto-created customer whose own project is no longer in it needs a key change: deleted
-- when empty, or made manual (created_for_project, a unique and so a key column, cleared).
-- Each such customer is locked FOR UPDATE instead, but only when that needs no wait: a
-- transaction adding a project to it holds FOR KEY SHARE (its foreign-key check) and then
-- waits for our lock in its own settle step, so waiting for FOR UPDATE, here or by upgrading
-- our lock in the change itself, would deadlock with it. Returns the customers locked FOR
-- UPDATE: only those may be deleted or made manual (settle_customers queues the others).
CREATE FUNCTION config.lock_customers(p_customers uuid[]) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    c    record;
    held uuid[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM config.customers cu
                   WHERE cu.uuid = ANY (p_customers) AND cu.origin IN ('system', 'project')
                     AND NOT EXISTS (SELECT 1 FROM config.projects p
                                     WHERE p.uuid = cu.created_for_project AND p.customer_id = cu.uuid)) THEN
        PERFORM 1 FROM config.customers cu WHERE cu.uuid = ANY (p_customers) ORDER BY cu.uuid FOR NO KEY UPDATE;
        RETURN held;
    END IF;
    FOR c IN SELECT cu.uuid,
                    cu.origin IN ('system', 'project')
                    AND NOT EXISTS (SELECT 1 FROM config.projects p
                                    WHERE p.uuid = cu.created_for_project AND p.customer_id = cu.uuid) AS lost_own
             FROM config.customers cu WHERE cu.uuid = ANY (p_customers) ORDER BY cu.uuid LOOP
        IF c.lost_own THEN
            PERFORM 1 FROM config.customers cu WHERE cu.uuid = c.uuid FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                PERFORM 1 FROM config.customers cu WHERE cu.uuid = c.uuid FOR NO KEY UPDATE;
                PERFORM 1 FROM config.customers cu WHERE cu.uuid = c.uuid FOR UPDATE SKIP LOCKED;
            END IF;
            IF FOUND THEN
                held := held || c.uuid;
            END IF;
        ELSE
            PERFORM 1 FROM config.customers cu WHERE cu.uuid = c.uuid FOR NO KEY UPDATE;
        END IF;
    END LOOP;
    RETURN held;
END
$$;
COMMENT ON FUNCTION config.lock_customers(uuid[]) IS 'Locks customers in uuid order before the rules decide about them (no deadlock, no write skew); returns those locked FOR UPDATE without waiting because they may need a key change (deleted, or made manual).';

-- After projects move, are renamed or deleted: auto-created customers left empty go,
-- an auto-created customer whose own project left it (but which an administrator gave
-- other projects) becomes manual, and single-project customers follow their project's
-- name. Every decision is taken after config.lock_customers, each statement with a fresh
-- snapshot. Both changes touch a key column, so they apply only to the customers
-- lock_customers could lock FOR UPDATE without waiting; one it could not (a project is
-- joining it right now) is queued (config.customers_unsettled): the joiner settles it after
-- us, or the next statement that settles customers does if the joiner rolls back.
-- The number renamed is added to the transaction's hierarchy.customers_renamed.
CREATE FUNCTION config.settle_customers(p_customers uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    held    uuid[];
    renamed integer;
BEGIN
    IF p_customers IS NULL OR cardinality(p_customers) = 0 THEN
        RETURN config.settle_unsettled();
    END IF;
    held := config.lock_customers(p_customers);
    IF cardinality(held) > 0 THEN
        PERFORM set_config('hierarchy.internal_delete', 'on', true);
        DELETE FROM config.customers c
        WHERE c.uuid = ANY (held) AND c.origin IN ('system', 'project')
          AND NOT EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = c.uuid);
        PERFORM set_config('hierarchy.internal_delete', '', true);
        UPDATE config.customers c SET origin = 'manual', created_for_project = NULL
        WHERE c.uuid = ANY (held) AND c.origin IN ('system', 'project')
          AND NOT EXISTS (SELECT 1 FROM config.projects p WHERE p.uuid = c.created_for_project AND p.customer_id = c.uuid)
          AND EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = c.uuid);
    END IF;
    -- Only auto-created customers can be left to the queue; a default or manual one (the
    -- job's tick settles its org's default customer) skips the statement. The customers are
    -- locked (lock_customers), so their origin cannot change under this test.
    IF EXISTS (SELECT 1 FROM config.customers c WHERE c.uuid = ANY (p_customers) AND c.origin IN ('system', 'project')) THEN
        -- one whose own project left that could not be locked for the change (a project is
        -- joining it right now): settled after that transaction (settle_unsettled)
        INSERT INTO config.customers_unsettled (customer_id)
        SELECT c.uuid FROM config.customers c
        WHERE c.uuid = ANY (p_customers) AND c.origin IN ('system', 'project')
          AND NOT EXISTS (SELECT 1 FROM config.projects p WHERE p.uuid = c.created_for_project AND p.customer_id = c.uuid)
        ON CONFLICT DO NOTHING;
    END IF;
    renamed := config.rename_single_project_customers(p_customers);
    IF renamed > 0 THEN
        PERFORM set_config('hierarchy.customers_renamed',
            (coalesce(nullif(current_setting('hierarchy.customers_renamed', true), ''), '0')::integer + renamed)::text, true);
    END IF;
    RETURN renamed + config.settle_unsettled();
END
$$;
COMMENT ON FUNCTION config.settle_customers(uuid[]) IS 'Tidies the customers a project change touched: empty auto-created ones deleted, those whose own project left made manual (or queued while a project joins them), rule 4 names applied.';

-- Settles the customers an earlier transaction had to leave (config.customers_unsettled)
-- that nobody holds now. They are locked without waiting, so any statement may call this
-- whatever customers it already holds: the lock order is kept by never waiting out of it.
-- Those still held stay queued. Called at the end of every settle_customers (so the queue
-- drains at release 6.4 too, where the job is unscheduled) and by the job.
CREATE FUNCTION config.settle_unsettled() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    free    uuid[];
    renamed integer;
BEGIN
    IF current_setting('hierarchy.settling_queue', true) = 'on'
       OR NOT EXISTS (SELECT 1 FROM config.customers_unsettled) THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM config.customers_unsettled u
        WHERE NOT EXISTS (SELECT 1 FROM config.customers c WHERE c.uuid = u.customer_id)
    ), free AS (
        SELECT c.uuid FROM config.customers c
        WHERE c.uuid IN (SELECT u.customer_id FROM config.customers_unsettled u)
        ORDER BY c.uuid
        FOR NO KEY UPDATE SKIP LOCKED
    ), taken AS (
        DELETE FROM config.customers_unsettled u USING free f WHERE u.customer_id = f.uuid
        RETURNING u.customer_id
    )
    SELECT array_agg(t.customer_id ORDER BY t.customer_id) INTO free FROM taken t;
    IF free IS NULL THEN
        RETURN 0;
    END IF;
    -- settling them may queue some again (still held by a joiner): not drained twice here
    PERFORM set_config('hierarchy.settling_queue', 'on', true);
    renamed := config.settle_customers(free);
    PERFORM set_config('hierarchy.settling_queue', '', true);
    RETURN renamed;
END
$$;
COMMENT ON FUNCTION config.settle_unsettled() IS 'Settles the queued customers (config.customers_unsettled) that can be locked without waiting; returns how many it renamed.';

-- Statement-level: finds the customers a statement touched and settles them once: every
-- customer a project left, joined, or stays in under a new name (config.lock_customers then
-- locks each). Skipped: a customer a project joins that was made for it in the same
-- transaction (by the insert trigger or the job): nobody else can see it yet, and its name
-- already comes from the project.
CREATE FUNCTION config.projects_settle() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- a project in its own new customer (config.own_customer_id) touched no other
        SELECT array_agg(DISTINCT n.customer_id) INTO touched
        FROM new_rows n JOIN config.customers c ON c.uuid = n.customer_id
        WHERE n.customer_id <> config.own_customer_id(n.uuid) AND c.created_for_project IS DISTINCT FROM n.uuid;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT o.customer_id) INTO touched
        FROM old_rows o WHERE o.customer_id IS NOT NULL;
    ELSE
        -- an UPDATE that matched no row (the idle job's, every tick) touched no customer
        IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
            RETURN NULL;
        END IF;
        -- EXECUTE plans the old/new joins afresh with the transition tables' real sizes (a plan
        -- cached for an UPDATE that changed no rows would nest-loop a later bulk update).
        EXECUTE $sql$
        SELECT array_agg(DISTINCT t.id)
        FROM (
            SELECT unnest(ARRAY[o.customer_id, n.customer_id]) AS id, o.customer_id AS old_id, n.uuid AS project
            FROM old_rows o JOIN new_rows n USING (uuid)
            WHERE o.customer_id IS DISTINCT FROM n.customer_id OR o.name IS DISTINCT FROM n.name
        ) t
        WHERE t.id IS NOT NULL
          AND NOT (t.old_id IS NULL AND EXISTS (SELECT 1 FROM config.customers c
                                                WHERE c.uuid = t.id AND c.created_for_project = t.project))
        $sql$ INTO touched;
    END IF;
    PERFORM config.settle_customers(touched);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION config.projects_settle() IS 'AFTER statement trigger on projects: calls settle_customers for the customers the statement touched.';

CREATE TRIGGER projects_settle_insert AFTER INSERT ON config.projects REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.projects_settle();
CREATE TRIGGER projects_settle_update AFTER UPDATE ON config.projects REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.projects_settle();
CREATE TRIGGER projects_settle_delete AFTER DELETE ON config.projects REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.projects_settle();
COMMENT ON TRIGGER projects_settle_insert ON config.projects IS 'Rule 4 after inserts: a customer that now has one project takes its name.';
COMMENT ON TRIGGER projects_settle_update ON config.projects IS 'Rule 4 after moves and renames; empty auto-created customers are deleted.';
COMMENT ON TRIGGER projects_settle_delete ON config.projects IS 'After project deletions: empty auto-created customers are deleted, rule 4 names applied.';

-- ---------------------------------------------------------------------------
-- The background job
-- ---------------------------------------------------------------------------

-- Rule 6: an orphan is due when forced, never associated, past the grace period, or
-- orphaned no later than the last change of the mode tunable. A batched run also stops
-- at the batch's last uuid.
CREATE FUNCTION config.orphan_is_due(p_uuid uuid, p_orphaned_at timestamptz, p_force boolean,
                                     p_due_before timestamptz, p_batch_last uuid)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (p_force OR p_orphaned_at IS NULL OR p_orphaned_at <= p_due_before)
       AND (p_batch_last IS NULL OR p_uuid <= p_batch_last)
$$;
COMMENT ON FUNCTION config.orphan_is_due(uuid, timestamptz, boolean, timestamptz, uuid) IS 'Rule 6: whether the job may re-home an orphan now (and, for batched runs, whether it is in this batch).';

-- Rule 6: orphaned at or before this instant, an orphan is due to the periodic job: the end
-- of its grace period, or the last change of the mode tunable if that is later. The job and
-- the command line's orphan reports both ask this function, so the rule lives here only.
CREATE FUNCTION config.orphans_due_before() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT greatest(
        now() - make_interval(secs => config.tunable('customer_orphan_grace_seconds')::text::integer),
        (SELECT modified FROM config.tunables WHERE name = config.mode_tunable()))
$$;
COMMENT ON FUNCTION config.orphans_due_before() IS 'Rule 6: orphans orphaned at or before this instant are due (grace period over, or the mode changed since).';

-- Homes every due orphan by rules 1 to 3, set-based, touching nothing else (rule 8); with
-- p_batch_size only the first that many (by uuid), so a caller can show progress.
-- Returns counts; with p_plan also the changes made (the first 1000), for dry runs.
CREATE FUNCTION config.reconcile_orphans(p_force boolean, p_plan boolean, p_batch_size integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    per_project boolean := config.per_project_mode();
    due_before  timestamptz := config.orphans_due_before();
    renamed_before integer := coalesce(nullif(current_setting('hierarchy.customers_renamed', true), ''), '0')::integer;
    made_ids    uuid[] := '{}';
    unused      integer := 0;
    associated  integer := 0;
    n           integer;
    keys        uuid[];
    names       text[];
    planned_ids uuid[];
    planned     jsonb;
    batch_last  uuid;
    exclusive   boolean;
    home_orgs      uuid[];  -- rule 2: the orgs with due orphans, and their default customers
    home_customers uuid[];
    leftovers   boolean;
BEGIN
    -- The lock order (docs/dba.md): the projects table before any customer row, so the pins
    -- below never wait for a customer deletion that waits for us (customers_delete_lock).
    LOCK TABLE config.projects IN ROW EXCLUSIVE MODE;
    -- The upgrade, a mode change and a switch hold the projects table exclusively: nobody
    -- else can hold a project row, so their runs take the orphans without row locks (a lock
    -- per row costs a third of a 100,000-project init job).
    exclusive := EXISTS (SELECT 1 FROM pg_locks l
                         WHERE l.locktype = 'relation' AND l.relation = 'config.projects'::regclass
                           AND l.pid = pg_backend_pid() AND l.granted
                           AND l.mode IN ('ExclusiveLock', 'AccessExclusiveLock'));
    IF p_batch_size IS NOT NULL THEN
        SELECT b.uuid INTO batch_last FROM (
            SELECT p.uuid FROM config.projects p
            WHERE p.customer_id IS NULL AND config.orphan_is_due(p.uuid, p.orphaned_at, p_force, due_before, NULL)
            ORDER BY p.uuid LIMIT p_batch_size) b
        ORDER BY b.uuid DESC LIMIT 1;
    END IF;
    IF p_plan THEN
        SELECT array_agg(p.uuid ORDER BY p.uuid) INTO planned_ids
        FROM config.projects p
        WHERE p.customer_id IS NULL AND config.orphan_is_due(p.uuid, p.orphaned_at, p_force, due_before, batch_last);
    END IF;

    -- Pin the leftover customers made for orphans, so a concurrent deletion either finishes
    -- before we look (and we create a new one) or waits for us.
    PERFORM 1 FROM config.customers c
    WHERE c.created_for_project IN (SELECT p.uuid FROM config.projects p WHERE p.customer_id IS NULL)
    FOR KEY SHARE OF c;
    leftovers := FOUND;

    -- rules 1 and 3: system projects, and every project in per-project mode, get a customer of
    -- their own. The orphans are locked as they are picked, without waiting: one that another
    -- transaction is changing right now (deleting it, giving it a customer, renaming it) is
    -- left to the next run, since waiting for it could deadlock with that transaction (it may
    -- hold other projects in another order, or wait for a customer we are about to lock).
    FOR n IN 0..CASE WHEN per_project THEN 1 ELSE 0 END LOOP
        IF exclusive THEN
            SELECT array_agg(p.uuid), array_agg(p.name) INTO keys, names
            FROM config.projects p
            WHERE p.customer_id IS NULL AND config.orphan_is_due(p.uuid, p.orphaned_at, p_force, due_before, batch_last)
              AND config.is_system_project(p.name) = (n = 0);
        ELSE
            SELECT array_agg(p.uuid), array_agg(p.name) INTO keys, names
            FROM (SELECT x.uuid, x.name FROM config.projects x
                  WHERE x.customer_id IS NULL AND config.orphan_is_due(x.uuid, x.orphaned_at, p_force, due_before, batch_last)
                    AND config.is_system_project(x.name) = (n = 0)
                  FOR NO KEY UPDATE SKIP LOCKED) p;
        END IF;
        IF keys IS NOT NULL THEN
            made_ids := made_ids || config.create_customers(CASE n WHEN 0 THEN 'system' ELSE 'project' END, keys, names);
        END IF;
    END LOOP;
    -- The associating UPDATEs clear orphaned_at themselves (what projects_track_orphans would
    -- do), so that row trigger's WHEN is false and no PL/pgSQL runs per project. With nothing
    -- to join (no customer made now, none left over) there is no UPDATE: no row locks and no
    -- statement triggers (every tick in single mode).
    IF cardinality(made_ids) > 0 OR leftovers THEN
        IF exclusive THEN
            UPDATE config.projects p SET customer_id = c.uuid, orphaned_at = NULL
            FROM config.customers c
            WHERE c.created_for_project = p.uuid
              AND p.customer_id IS NULL AND config.orphan_is_due(p.uuid, p.orphaned_at, p_force, due_before, batch_last);
        ELSE
            UPDATE config.projects p SET customer_id = c.uuid, orphaned_at = NULL
            FROM config.customers c,
                 (SELECT x.uuid FROM config.projects x
                  WHERE x.customer_id IS NULL AND config.orphan_is_due(x.uuid, x.orphaned_at, p_force, due_before, batch_last)
                  FOR NO KEY UPDATE SKIP LOCKED) mine
            WHERE c.created_for_project = p.uuid AND p.uuid = mine.uuid;
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        associated := associated + n;
    END IF;

    -- rule 2: everything else joins the org's default customer: the missing ones are created
    -- first (so that we know which we made), then each is found and pinned by
    -- config.default_customer before any project points at it
    IF NOT per_project THEN
        SELECT array_agg(o.uuid), array_agg(o.name || '-default') INTO keys, names
        FROM config.orgs o
        WHERE NOT EXISTS (SELECT 1 FROM config.customers d WHERE d.default_for_org = o.uuid)
          AND EXISTS (SELECT 1 FROM config.projects x
                      WHERE x.org_id = o.uuid AND x.customer_id IS NULL
                        AND config.orphan_is_due(x.uuid, x.orphaned_at, p_force, due_before, batch_last)
                        AND NOT config.is_system_project(x.name));
        IF keys IS NOT NULL THEN
            made_ids := made_ids || config.create_customers('default', keys, names);
        END IF;
        SELECT array_agg(o.uuid), array_agg(config.default_customer(o.uuid)) INTO home_orgs, home_customers
        FROM config.orgs o
        WHERE EXISTS (SELECT 1 FROM config.projects x
                      WHERE x.org_id = o.uuid AND x.customer_id IS NULL
                        AND config.orphan_is_due(x.uuid, x.orphaned_at, p_force, due_before, batch_last)
                        AND NOT config.is_system_project(x.name));
        -- no org with a due orphan (every tick while orphans wait out their grace): no UPDATE
        IF home_orgs IS NOT NULL THEN
            IF exclusive THEN
                UPDATE config.projects p SET customer_id = h.customer_id, orphaned_at = NULL
                FROM unnest(home_orgs, home_customers) AS h (org_id, customer_id)
                WHERE p.org_id = h.org_id
                  AND p.customer_id IS NULL AND config.orphan_is_due(p.uuid, p.orphaned_at, p_force, due_before, batch_last)
                  AND NOT config.is_system_project(p.name);
            ELSE
                UPDATE config.projects p SET customer_id = h.customer_id, orphaned_at = NULL
                FROM unnest(home_orgs, home_customers) AS h (org_id, customer_id),
                     (SELECT x.uuid FROM config.projects x
                      WHERE x.customer_id IS NULL AND config.orphan_is_due(x.uuid, x.orphaned_at, p_force, due_before, batch_last)
                        AND NOT config.is_system_project(x.name)
                      FOR NO KEY UPDATE SKIP LOCKED) mine
                WHERE p.org_id = h.org_id AND p.uuid = mine.uuid;
            END IF;
            GET DIAGNOSTICS n = ROW_COUNT;
            associated := associated + n;
        END IF;
    END IF;

    -- An orphan deleted or given a customer by someone else since it was picked was skipped
    -- by the associating UPDATE (it re-checks customer_id IS NULL on the row's latest
    -- version): the customer made for it goes again. Nobody else can see what we created, so
    -- "empty" here is exact and needs no lock.
    IF cardinality(made_ids) > 0 THEN
        PERFORM set_config('hierarchy.internal_delete', 'on', true);
        DELETE FROM config.customers c
        WHERE c.uuid = ANY (made_ids) AND NOT EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = c.uuid);
        GET DIAGNOSTICS unused = ROW_COUNT;
        PERFORM set_config('hierarchy.internal_delete', '', true);
    END IF;

    IF p_plan THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'project', p.uuid, 'project_name', p.name, 'org', p.org_id,
                   'customer', c.uuid, 'customer_name', c.name,
                   'action', CASE WHEN c.created = now() THEN 'create' ELSE 'join' END,
                   'reason', CASE c.origin
                       WHEN 'system' THEN 'system project: a customer of its own (rule 1)'
                       WHEN 'default' THEN 'single mode: the org''s default customer (rule 2)'
                       ELSE 'per-project mode: a customer of its own (rule 3)' END)
                   ORDER BY p.uuid), '[]'::jsonb)
        INTO planned
        FROM (SELECT * FROM config.projects WHERE uuid = ANY (planned_ids[1:1000])) p
        JOIN config.customers c ON c.uuid = p.customer_id;
    END IF;

    -- Customers a concurrent transaction had to leave unsettled (rule 4 names, empty
    -- auto-created ones) are settled last: customer rows come after project rows in the lock
    -- order. Those still held by someone stay queued.
    PERFORM config.settle_unsettled();

    -- the three orphan counts of the answer in one pass over the orphans (a partial index)
    RETURN (SELECT jsonb_build_object(
               'mode', CASE WHEN per_project THEN 'per_project' ELSE 'single' END,
               'customers_created', cardinality(made_ids) - unused,
               'projects_associated', associated,
               'customers_renamed',
                   coalesce(nullif(current_setting('hierarchy.customers_renamed', true), ''), '0')::integer - renamed_before,
               'orphans_waiting', count(*),
               'orphans_unresolved',
                   count(*) FILTER (WHERE config.orphan_is_due(p.uuid, p.orphaned_at, p_force, due_before, batch_last)),
               'orphans_due_remaining',
                   count(*) FILTER (WHERE config.orphan_is_due(p.uuid, p.orphaned_at, p_force, due_before, NULL)))
            FROM config.projects p WHERE p.customer_id IS NULL)
        || CASE WHEN p_plan THEN jsonb_build_object('planned', planned, 'planned_total', coalesce(cardinality(planned_ids), 0))
                ELSE '{}'::jsonb END;
END
$$;
COMMENT ON FUNCTION config.reconcile_orphans(boolean, boolean, integer) IS 'The job''s work: homes due orphans by rules 1 to 3 (no lock, no bookkeeping: call reconcile_customers).';

-- The background job: idempotent, set-based, one run at a time (a concurrent call returns
-- at once, or waits when p_wait), recorded in job_runs. A dry run does the work and rolls
-- it back (config.rolled_back).
CREATE FUNCTION config.reconcile_customers(
    dry_run boolean DEFAULT false,
    force   boolean DEFAULT false,
    source  text    DEFAULT 'sql',
    wait    boolean DEFAULT false,
    batch_size integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
    result  jsonb;
    failure text;
    run_id  bigint;
    sources text[] := config.job_sources();
BEGIN
    IF dry_run OR force THEN  -- the plain run (pg_cron's, the service's scheduler's) is open to its callers
        PERFORM service_state.require_request_permission('config.reconcile_customers',
                                                         CASE source WHEN 'switch' THEN 'mode.switch' ELSE 'jobs.run' END);
    END IF;
    IF source IS NULL OR source <> ALL (sources) THEN
        RAISE EXCEPTION 'unknown job source %: use % or %', source,
            array_to_string(sources[1:cardinality(sources) - 1], ', '), sources[cardinality(sources)]
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1 (got %)', batch_size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF wait THEN
        PERFORM pg_advisory_xact_lock(config.job_lock_key());
    ELSIF NOT pg_try_advisory_xact_lock(config.job_lock_key()) THEN
        INSERT INTO config.job_runs (source, dry_run, forced, skipped, started)
        VALUES (source, coalesce(dry_run, false), coalesce(force, false), true, started)
        RETURNING id INTO run_id;
        RETURN jsonb_build_object('run_id', run_id, 'source', source, 'skipped', true,
                                  'detail', 'another run holds the lock; nothing done');
    END IF;
    -- a run starts when it has the lock (the run before it has committed by then), so runs
    -- recorded in job_runs never overlap, whether this one waited or not
    started := clock_timestamp();

    BEGIN
        IF dry_run THEN
            result := config.rolled_back(
                'SELECT config.reconcile_orphans(($1->>''force'')::boolean, true, ($1->>''batch_size'')::integer)',
                jsonb_build_object('force', coalesce(force, false), 'batch_size', batch_size));
        ELSE
            result := config.reconcile_orphans(coalesce(force, false), false, batch_size);
        END IF;
    EXCEPTION
        WHEN OTHERS THEN
            IF source IN ('upgrade', 'tunable', 'switch') THEN
                RAISE;  -- the change that asked for this run must not commit without it
            END IF;
            GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT;
            result := '{}'::jsonb;
    END;

    INSERT INTO config.job_runs (source, dry_run, forced, started, customers_created, projects_associated,
                                 customers_renamed, orphans_waiting, orphans_unresolved, error)
    VALUES (source, coalesce(dry_run, false), coalesce(force, false), started,
            coalesce((result ->> 'customers_created')::integer, 0),
            coalesce((result ->> 'projects_associated')::integer, 0),
            coalesce((result ->> 'customers_renamed')::integer, 0),
            coalesce((result ->> 'orphans_waiting')::integer, 0),
            coalesce((result ->> 'orphans_unresolved')::integer, 0),
            failure)
    RETURNING id INTO run_id;

    IF NOT coalesce(dry_run, false) THEN
        DELETE FROM config.job_runs WHERE job_runs.started < now() - interval '7 days';
    END IF;

    RETURN result || jsonb_build_object('run_id', run_id, 'source', source, 'dry_run', coalesce(dry_run, false),
                                        'forced', coalesce(force, false), 'skipped', false, 'error', failure);
END
$$;
COMMENT ON FUNCTION config.reconcile_customers(boolean, boolean, text, boolean, integer) IS 'The background job (rules 1-4, 6, 8): homes due orphans; force ignores the grace period; dry_run returns the planned changes and changes nothing; wait waits for a running job instead of returning; batch_size homes at most that many orphans (call again until projects_associated is 0); records a job_runs row. Run it: SELECT config.reconcile_customers(force => true);';

-- ---------------------------------------------------------------------------
-- Mode changes
-- ---------------------------------------------------------------------------

-- Rule 7: a change of the mode tunable runs the job in the same transaction.
-- The job lock, then the projects table in EXCLUSIVE mode (the lock order in
-- docs/dba.md): a project being created while the mode changes commits before the run
-- looks, or starts after the change commits and reads the new mode.
CREATE FUNCTION config.on_mode_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(config.job_lock_key());
    LOCK TABLE config.projects IN EXCLUSIVE MODE;
    PERFORM config.reconcile_customers(source => 'tunable', wait => true);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION config.on_mode_changed() IS 'Rule 7: AFTER UPDATE trigger on the mode tunable running the job in the same transaction.';

CREATE TRIGGER tunables_mode_changed AFTER UPDATE ON config.tunables
    FOR EACH ROW
    WHEN (NEW.name = config.mode_tunable() AND NEW.value IS DISTINCT FROM OLD.value)
    EXECUTE FUNCTION config.on_mode_changed();
COMMENT ON TRIGGER tunables_mode_changed ON config.tunables IS 'Rule 7: changing turbine_api_feature_migrate_projects_to_orgs runs the job in the same transaction.';

-- Rule 9's work, in the caller's transaction: set the tunable, dissolve the other mode's
-- auto-created customers, and home the freed projects in one forced run whose counts are
-- returned. The tunable goes first so that its trigger's run (rule 7) finds nothing of the
-- dissolved customers to do, and the forced run at the end does all of the re-homing.
CREATE FUNCTION config.switch_mode_now(p_per_project boolean) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    dissolved integer;
    freed     integer;
    job       jsonb;
BEGIN
    UPDATE config.tunables SET value = to_jsonb(p_per_project)
    WHERE name = config.mode_tunable() AND value IS DISTINCT FROM to_jsonb(p_per_project);

    IF p_per_project THEN
        -- every project of the default customers, then the emptied default customers
        UPDATE config.projects p SET customer_id = NULL
        FROM config.customers c
        WHERE p.customer_id = c.uuid AND c.origin = 'default';
        GET DIAGNOSTICS freed = ROW_COUNT;
        DELETE FROM config.customers c
        WHERE c.origin = 'default' AND NOT EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = c.uuid);
        GET DIAGNOSTICS dissolved = ROW_COUNT;
    ELSE
        -- per-project customers still holding only their own project; emptied, they are
        -- deleted by the projects_settle_update trigger
        SELECT count(*) INTO dissolved FROM config.customers c
        WHERE c.origin = 'project'
          AND NOT EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = c.uuid
                            AND p.uuid IS DISTINCT FROM c.created_for_project);
        UPDATE config.projects p SET customer_id = NULL
        FROM config.customers c
        WHERE p.customer_id = c.uuid AND c.origin = 'project' AND c.created_for_project = p.uuid
          AND NOT EXISTS (SELECT 1 FROM config.projects o WHERE o.customer_id = c.uuid AND o.uuid <> p.uuid);
        GET DIAGNOSTICS freed = ROW_COUNT;
    END IF;

    job := config.reconcile_customers(force => true, source => 'switch', wait => true);
    RETURN jsonb_build_object(
        'per_project', p_per_project,
        'customers_dissolved', dissolved,
        'projects_freed', freed,
        'customers_created', job -> 'customers_created',
        'projects_associated', job -> 'projects_associated',
        'orphans_waiting', job -> 'orphans_waiting');
END
$$;
COMMENT ON FUNCTION config.switch_mode_now(boolean) IS 'The work of switch_customer_mode, without the lock and the dry-run wrapper.';

-- Rule 9's dry run, in a sub-transaction its caller rolls back: remember the projects the
-- switch may move (those of the customers it dissolves, and the orphans its forced run homes)
-- with their customers, do the switch, and name what changed: each project that moved (from,
-- to, why) and each customer that went, the first 1000 of each (by org and project or
-- customer name) with the totals.
CREATE FUNCTION config.switch_mode_plan(p_per_project boolean) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    dissolving    text := CASE WHEN p_per_project THEN 'default' ELSE 'project' END;
    projects      uuid[];
    from_ids      uuid[];
    from_names    text[];
    customers     uuid[];
    customer_names text[];
    customer_sizes integer[];
    result        jsonb;
    moves         jsonb;
    moves_total   integer;
    dissolved     jsonb;
    dissolved_total integer;
BEGIN
    SELECT array_agg(p.uuid), array_agg(p.customer_id), array_agg(c.name)
    INTO projects, from_ids, from_names
    FROM config.projects p
    LEFT JOIN config.customers c ON c.uuid = p.customer_id
    WHERE p.customer_id IS NULL OR c.origin = dissolving;
    SELECT array_agg(c.uuid), array_agg(c.name),
           array_agg((SELECT count(*) FROM config.projects p WHERE p.customer_id = c.uuid)::integer)
    INTO customers, customer_names, customer_sizes
    FROM config.customers c
    WHERE c.origin = dissolving;

    result := config.switch_mode_now(p_per_project);

    WITH moved AS (
        SELECT b.project, p.name AS project_name, p.org_id, o.name AS org_name,
               b.from_id, b.from_name, c.uuid AS to_id, c.name AS to_name, c.origin AS to_origin,
               c.created = now() AS created  -- made by this (rolled back) switch
        FROM unnest(projects, from_ids, from_names) AS b (project, from_id, from_name)
        JOIN config.projects p ON p.uuid = b.project
        JOIN config.orgs o ON o.uuid = p.org_id
        LEFT JOIN config.customers c ON c.uuid = p.customer_id
        WHERE p.customer_id IS DISTINCT FROM b.from_id
    )
    SELECT (SELECT count(*) FROM moved)::integer,
           coalesce((SELECT jsonb_agg(jsonb_build_object(
                   'project', m.project, 'project_name', m.project_name,
                   'org', m.org_id, 'org_name', m.org_name,
                   'from_customer', m.from_id, 'from_customer_name', m.from_name,
                   'to_customer', CASE WHEN NOT m.created THEN m.to_id END,
                   'to_customer_name', m.to_name,
                   'new_customer', coalesce(m.created, false),
                   'to', CASE WHEN m.to_id IS NULL THEN 'no customer (stays an orphan)'
                              WHEN m.created THEN 'new customer ' || m.to_name
                              ELSE m.to_name END,
                   'reason', CASE WHEN m.from_id IS NULL THEN 'an orphan'
                                  ELSE format('its %s customer %s is dissolved', CASE WHEN p_per_project THEN 'default'
                                                     ELSE 'per-project' END, m.from_name) END
                             || ': ' || CASE m.to_origin
                                  WHEN 'system' THEN 'system project: a customer of its own (rule 1)'
                                  WHEN 'default' THEN 'single mode: the org''s default customer (rule 2)'
                                  WHEN 'project' THEN 'per-project mode: a customer of its own (rule 3)'
                                  ELSE 'no customer name is free; the job retries' END)
                   ORDER BY m.org_name, m.project_name, m.project)
               FROM (SELECT * FROM moved ORDER BY org_name, project_name, project LIMIT 1000) m), '[]'::jsonb)
    INTO moves_total, moves;

    WITH gone AS (
        SELECT d.customer, d.name, d.projects
        FROM unnest(customers, customer_names, customer_sizes) AS d (customer, name, projects)
        WHERE NOT EXISTS (SELECT 1 FROM config.customers c WHERE c.uuid = d.customer)
    )
    SELECT (SELECT count(*) FROM gone)::integer,
           coalesce((SELECT jsonb_agg(jsonb_build_object(
                   'customer', g.customer, 'name', g.name, 'origin', dissolving, 'projects', g.projects)
                   ORDER BY g.name)
               FROM (SELECT * FROM gone ORDER BY name LIMIT 1000) g), '[]'::jsonb)
    INTO dissolved_total, dissolved;

    RETURN result || jsonb_build_object('moves', moves, 'moves_total', moves_total,
                                        'dissolved', dissolved, 'dissolved_total', dissolved_total);
END
$$;
COMMENT ON FUNCTION config.switch_mode_plan(boolean) IS 'Rule 9 dry run: does switch_mode_now and lists the projects that moved (from, to, why) and the customers dissolved, the first 1000 of each with totals; the caller rolls it back.';

-- Rule 9: the documented manual transitions in one atomic step, with no window for a tick.
CREATE FUNCTION config.switch_customer_mode(per_project boolean, dry_run boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM service_state.require_request_permission('config.switch_customer_mode', 'mode.switch');
    IF per_project IS NULL THEN
        RAISE EXCEPTION 'per_project must be true (a customer per project) or false (one default customer per org)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- The lock order (docs/dba.md): the mode tunable's row, the job lock, then the projects
    -- table, which keeps every project change (creates included) out until the switch commits.
    PERFORM 1 FROM config.tunables WHERE name = config.mode_tunable() FOR NO KEY UPDATE;
    PERFORM pg_advisory_xact_lock(config.job_lock_key());
    LOCK TABLE config.projects IN EXCLUSIVE MODE;
    IF NOT coalesce(dry_run, false) THEN
        RETURN config.switch_mode_now(per_project) || jsonb_build_object('dry_run', false);
    END IF;
    RETURN config.rolled_back('SELECT config.switch_mode_plan(($1->>''per_project'')::boolean)',
                              jsonb_build_object('per_project', per_project))
           || jsonb_build_object('dry_run', true);
END
$$;
COMMENT ON FUNCTION config.switch_customer_mode(boolean, boolean) IS 'Rule 9: switch to per-project customers (true) or one default customer per org (false) atomically; manual customers are untouched. dry_run changes nothing and names what the switch would do: the projects it would move (from, to, why) and the customers it would dissolve, the first 1000 of each with totals.';

-- ---------------------------------------------------------------------------
-- No JIT inside the rules
-- ---------------------------------------------------------------------------

-- The job's and the statement triggers' statements join transition tables and whole tables
-- whose estimates reach 10^8 rows, far past jit_above_cost: with jit on (the server default)
-- PostgreSQL compiles them on every call, seconds of LLVM work for plans that run in
-- milliseconds to a few seconds. The per-row triggers (assign_new_project, track_orphans,
-- customers_guard_name) run single-row lookups below any JIT threshold and keep no SET clause,
-- which would cost a settings save and restore per row.
ALTER FUNCTION config.create_customers(text, uuid[], text[]) SET jit = off;
ALTER FUNCTION config.default_customer(uuid) SET jit = off;
ALTER FUNCTION config.rename_single_project_customers(uuid[]) SET jit = off;
ALTER FUNCTION config.settle_customers(uuid[]) SET jit = off;
ALTER FUNCTION config.lock_customers(uuid[]) SET jit = off;
ALTER FUNCTION config.projects_settle() SET jit = off;
ALTER FUNCTION config.reconcile_orphans(boolean, boolean, integer) SET jit = off;
ALTER FUNCTION config.reconcile_customers(boolean, boolean, text, boolean, integer) SET jit = off;
ALTER FUNCTION config.on_mode_changed() SET jit = off;
ALTER FUNCTION config.switch_mode_now(boolean) SET jit = off;
ALTER FUNCTION config.switch_mode_plan(boolean) SET jit = off;
ALTER FUNCTION config.switch_customer_mode(boolean, boolean) SET jit = off;

-- ---------------------------------------------------------------------------
-- Schedule
-- ---------------------------------------------------------------------------

-- Where pg_cron is installed in this database, run the job every minute (pg_cron 1.4
-- ticks per minute) and prune pg_cron's own history daily. Elsewhere the service runs
-- the job itself (service/scheduler.py).
-- cron.schedule records this node's cron.host and port in cron.job. One node runs the job
-- through that connection; a Patroni cluster sets cron.use_background_workers = on on every
-- node, so the job runs in whichever node is primary and the recorded address is never used
-- (docs/operators.md, "Running on a cluster").
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.schedule('reconcile-customers', '* * * * *',
                              $job$SELECT config.reconcile_customers(source => 'cron')$job$);
        PERFORM cron.schedule('prune-cron-history', '17 3 * * *',
                              $job$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days'$job$);
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- The upgrade's init job: when this migration commits, every project is associated.
-- ---------------------------------------------------------------------------

SELECT config.reconcile_customers(force => true, source => 'upgrade');

-- ---------------------------------------------------------------------------
-- Upgrade checks (release 6.4 is migrations/0003, which calls this first)
-- ---------------------------------------------------------------------------

-- What stands between this database and `release`, one row per blocker with the reason and
-- what to do. From 6.4 on every project keeps the customer it has, so every orphan blocks.
-- Earlier releases have no blockers. Oldest orphans first.
CREATE FUNCTION config.upgrade_blockers(release text)
RETURNS TABLE (blocker text, org_id uuid, org_name text, project_id uuid, project_name text,
               since timestamptz, reason text, remedy text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF release IS NULL OR release !~ '^[0-9]+\.[0-9]+$' THEN
        RAISE EXCEPTION 'a release looks like 6.4 (got %)', coalesce(release, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF string_to_array(release, '.')::integer[] < ARRAY[6, 4]::integer[] THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT 'orphan'::text, o.uuid, o.name, p.uuid, p.name, coalesce(p.orphaned_at, p.created),
           'the project has no customer; from release 6.4 a project keeps its customer for good'::text,
           'home it: hierarchy reconcile --force (SELECT config.reconcile_customers(force => true)), '
           'or give it a customer (POST /config/v1/customers/{uuid}/add_projects/)'::text
    FROM config.projects p
    JOIN config.orgs o ON o.uuid = p.org_id
    WHERE p.customer_id IS NULL
    ORDER BY coalesce(p.orphaned_at, p.created), o.name, p.name, p.uuid;
END
$$;
COMMENT ON FUNCTION config.upgrade_blockers(text) IS 'Pre-upgrade check: what blocks an upgrade to the given release (from 6.4: every orphaned project), with the reason and the remedy; no rows means the upgrade may go ahead. SELECT * FROM config.upgrade_blockers(''6.4'');';
