-- Database roles and what each may do: least privilege for the service (docs/dba.md, "Roles").
--
-- Not a migration, like sql/service_state.sql: roles are cluster-wide objects, and the grants
-- and SECURITY DEFINER settings must hold at every release (6.0 to 6.4) and cover whatever a
-- later migration adds or redefines. service/migrations.py `migrate()` applies this file after
-- the ladder's steps and service_state.sql, every time, in one transaction under yoyo's lock.
-- It must stay idempotent. The role names are filled in by service/roles.py from
-- HIERARCHY_ROLE_PREFIX (default `hierarchy`): owner, app, reader, cron below are
-- <prefix>_owner, <prefix>_app, <prefix>_reader, <prefix>_cron (one prefix per database when
-- several databases share a cluster). No value of a row is formatted in: only role names.
--
--   owner   owns the schemas config and service_state and everything in them; migrations run
--           as it (or as a superuser, after which this file gives it what they created).
--           NOLOGIN when this file creates it: a DBA gives it LOGIN, or migrates as a superuser.
--   app     the service's runtime role: LOGIN, NOSUPERUSER, NOCREATEROLE, NOCREATEDB,
--           NOBYPASSRLS, not a member of owner; the DML the API runs, no DDL, no TRUNCATE, no
--           UPDATE/DELETE on config.audit_log; row-level security applies to it.
--   reader  read-only reports: SELECT on config's tables, EXECUTE on its stable functions.
--   cron    pg_cron's job: EXECUTE on config.reconcile_customers only (SECURITY DEFINER).

-- Function bodies naming columns of some releases only (projects.customer_id from 6.1) are
-- created at every release and only called where those exist (plain SQL bodies record no
-- dependency). The policies below name such columns directly (so the planner sees through
-- them); migrate() drops every policy of schema config before a migration step runs
-- (service/migrations.py, _before_steps: no rollback's DROP COLUMN trips over one, and the
-- runtime role sees nothing meanwhile) and this file creates them again after the steps.
SET LOCAL check_function_bodies = off;

-- -- the roles (created when missing; a DBA may create them first, with passwords) -------------
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {owner_name}) THEN
        CREATE ROLE {owner} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {app_name}) THEN
        CREATE ROLE {app} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {reader_name}) THEN
        CREATE ROLE {reader} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {cron_name}) THEN
        CREATE ROLE {cron} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database of this cluster created them at the same moment
END
$roles$;

-- The runtime role must not be able to become anything more (SET ROLE to the owner): refuse
-- to go on with a cluster where it can, rather than grant on top of it.
DO $guard$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles
               WHERE rolname = {app_name} AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb)) THEN
        RAISE EXCEPTION 'role % must be NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB', {app_name};
    END IF;
    IF EXISTS (SELECT 1 FROM pg_auth_members m
               WHERE m.member = {app_name}::regrole
                 AND m.roleid IN ({owner_name}::regrole, {cron_name}::regrole)) THEN
        RAISE EXCEPTION 'role % must not be a member of % or %', {app_name}, {owner_name}, {cron_name};
    END IF;
END
$guard$;

-- -- functions that do more than their caller may: SECURITY DEFINER, fixed search_path --------
-- (Re-set after every migrate: a migration that redefines one with CREATE OR REPLACE keeps these
-- settings, one that drops and creates it does not.) They run as the owner; EXECUTE on them is
-- revoked from PUBLIC below and granted to the roles that call them, and each but the trigger
-- functions checks its caller first (service_state.require_request_permission, in
-- sql/service_state.sql: a signed request user with the API's permission, unless the session is
-- a superuser or the owner). The job, the mode switch, the DBA functions of memberships, the
-- promotion; and every trigger function: the rules (rule 1 to 10) and the audit log must see
-- and change every row whoever fired them, so row-level security never bends a rule (a customer
-- whose last project left must be deleted even when the user who moved the project cannot see
-- it any more), and audit rows are written by the owner only.
DO $definer$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'config'::regnamespace
                AND (p.proname IN ('reconcile_customers', 'switch_customer_mode',
                                   'add_membership', 'remove_membership', 'set_membership_role',
                                   'set_primary_org',
                                   -- the promotion (6.4, migrations/0005): it reads and moves
                                   -- every org's rows and its records, whoever calls it
                                   'promote_customers', 'demote_orgs', 'promotion_blockers',
                                   'demotion_blockers')
                     OR p.prorettype = 'trigger'::regtype) LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, config, pg_temp', fn);
    END LOOP;
END
$definer$;

-- -- the customers page: one statement planned once (issue 23) ----------------------------------
-- Row-level security doubles the planning of the page's statement (the customers policy, with the
-- projects policy inside its EXISTS, is expanded for every reference), and PostgreSQL plans it
-- anew on every execution: the generic plan's estimated cost (both arms of "all_orgs or the
-- user's orgs", the count of the visible customers) never beats a custom plan's. For a super
-- admin's unfiltered page the generic plan is the custom plan (the name index, LIMIT), so this
-- function keeps it (plpgsql caches its statements' plans per session; SET plan_cache_mode for
-- this function only: forced for the whole runtime role it wrecked the other statements,
-- bench/ANALYSIS.md). Any other page (a filter, a user without all_orgs) is planned for its
-- values as before (set_config below; the function's SET restores the setting on return): a
-- generic plan there scans every customer (a rare origin, a name) or hashes nothing (a user
-- without all_orgs: 2x slower). Here, not in a migration, because the page needs it at 6.1 and
-- 6.4 alike. It runs as the caller (row-level security applies); the second statement is the
-- one the named block customers.list was before, the first the same for all_orgs, no filter.
CREATE OR REPLACE FUNCTION config.customers_page(
    p_all_orgs boolean, p_user_id uuid, p_user_orgs uuid[], p_name text, p_origin text,
    p_limit bigint, p_offset bigint)
RETURNS TABLE (results text, total bigint)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF p_all_orgs AND p_name IS NULL AND p_origin IS NULL THEN
        RETURN QUERY
        SELECT coalesce(json_agg(r ORDER BY r.name, r.uuid)::text, '[]'), config.customer_count(NULL)
        FROM (
            SELECT c.uuid, c.name, c.description, c.origin,
                   ARRAY(SELECT p.uuid FROM config.projects p
                         WHERE p.customer_id = c.uuid ORDER BY p.name, p.uuid) AS projects,
                   config.api_time(c.created) AS created, config.api_time(c.modified) AS modified
            FROM (SELECT k.uuid, k.name, k.description, k.origin, k.created, k.modified
                  FROM config.customers k
                  ORDER BY k.name, k.uuid
                  LIMIT p_limit OFFSET p_offset) c
        ) r;
        RETURN;
    END IF;
    PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
    RETURN QUERY
    WITH visible AS NOT MATERIALIZED (
        SELECT c.uuid, c.name, c.description, c.origin, c.created, c.modified
        FROM config.customers c
        WHERE (p_all_orgs OR c.created_by = p_user_id  -- customer visible
               OR EXISTS (SELECT 1 FROM config.projects p
                          WHERE p.customer_id = c.uuid AND p.org_id = ANY (p_user_orgs)))
          AND (p_name IS NULL OR c.name = p_name)
          AND (p_origin IS NULL OR c.origin = p_origin)
    ), page AS (
        SELECT * FROM visible v
        ORDER BY v.name, v.uuid
        LIMIT p_limit OFFSET p_offset
    )
    SELECT coalesce(json_agg(r ORDER BY r.name, r.uuid)::text, '[]'),
           CASE WHEN p_all_orgs AND p_name IS NULL
                THEN (SELECT config.customer_count(p_origin))
                ELSE (SELECT count(*) FROM visible) END
    FROM (
        SELECT c.uuid, c.name, c.description, c.origin,
               ARRAY(SELECT p.uuid FROM config.projects p
                     WHERE p.customer_id = c.uuid AND (p_all_orgs OR p.org_id = ANY (p_user_orgs)) /* org visible */
                     ORDER BY p.name, p.uuid) AS projects,
               config.api_time(c.created) AS created, config.api_time(c.modified) AS modified
        FROM page c
    ) r;
END
$$;
COMMENT ON FUNCTION config.customers_page(boolean, uuid, uuid[], text, text, bigint, bigint) IS
    'The customers page (sql/queries/customers.list): the JSON array of the page and the total. A super admin''s unfiltered page runs on a cached generic plan (planned once per session, not per request under row-level security); any other on a plan made for its values. Runs as the caller; defined by sql/privileges.sql at every release from 6.1 (at 6.0, which has no customers, it exists and is not called).';

-- -- privileges: nothing by default, then what each role needs ----------------------------------
REVOKE ALL ON SCHEMA config, service_state FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA config, service_state FROM PUBLIC, {app}, {reader}, {cron};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA config, service_state FROM PUBLIC, {app}, {reader}, {cron};
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA config, service_state FROM PUBLIC, {app}, {reader}, {cron};

GRANT USAGE ON SCHEMA config, service_state TO {app};
GRANT USAGE ON SCHEMA config TO {reader}, {cron};

-- The runtime role: the tables the API reads and changes (directly, or through the triggers its
-- changes fire, which run as it), by the statements of sql/queries.
DO $tables$
DECLARE
    t record;
BEGIN
    -- (table, privileges): a table of some releases only (job_runs, customers from 6.1,
    -- memberships from 6.4) is granted where it exists
    FOR t IN SELECT * FROM (VALUES
        ('config.orgs', 'SELECT'),
        ('config.roles', 'SELECT'),
        ('config.role_permissions', 'SELECT'),
        ('config.tunables', 'SELECT, UPDATE'),
        ('config.projects', 'SELECT, INSERT, UPDATE, DELETE'),
        ('config.users', 'INSERT'),               -- SELECT of every column but password_hash, below; no UPDATE, DELETE
        ('config.tokens', 'SELECT, DELETE'),      -- made by service_state.log_in (definer); UPDATE (revoked) below
        ('config.audit_log', 'SELECT'),           -- written by the audit triggers (definer); never UPDATE, DELETE
        ('config.job_runs', 'SELECT'),            -- written by config.reconcile_customers (definer)
        ('config.customers', 'SELECT, INSERT, UPDATE, DELETE'),
        ('config.customers_unsettled', 'SELECT, INSERT, UPDATE, DELETE'),  -- kept by the rules' triggers
        ('config.customer_counts', 'SELECT, INSERT, UPDATE, DELETE'),
        ('config.org_memberships', 'SELECT, INSERT'),  -- changes: the definer functions
        ('config.org_promotions', 'SELECT'),      -- the promotion in force; written by its definer functions
        ('config.promoted_orgs', 'SELECT'),       -- the customer an org stands for (orgs list and detail)
        ('service_state.login_failures', 'SELECT, INSERT, UPDATE, DELETE')
    ) AS g (name, privileges) LOOP
        IF to_regclass(t.name) IS NOT NULL THEN
            EXECUTE format('GRANT %s ON %s TO %I', t.privileges, t.name, {app_name});
        END IF;
    END LOOP;
END
$tables$;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA config TO {app};
-- Functions: every function of config (the statements and the rules' triggers call them) but the
-- ones the owner alone runs through a SECURITY DEFINER caller.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA config TO {app};
GRANT EXECUTE ON FUNCTION service_state.recent_attempts(timestamptz[], integer),
    service_state.without_attempt(timestamptz[], timestamptz) TO {app};
DO $internal$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'config'::regnamespace
                AND p.proname IN ('reconcile_orphans', 'switch_mode_now', 'switch_mode_plan') LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I', fn, {app_name});
    END LOOP;
    -- pg_cron's role: the job, nothing else
    FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'config'::regnamespace AND p.proname = 'reconcile_customers' LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, {cron_name});
    END LOOP;
    -- the report role: the functions that change nothing (stable or immutable, not definer)
    FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'config'::regnamespace AND p.provolatile IN ('s', 'i')
                AND NOT p.prosecdef AND p.prorettype <> 'trigger'::regtype LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, {reader_name});
    END LOOP;
END
$internal$;

-- The report role: read every table of config (RLS policies let it see every row).
GRANT SELECT ON ALL TABLES IN SCHEMA config TO {reader};

-- What the owner creates later: reports may read it; nobody else gets anything until a line
-- above grants it (a table a later migration adds is covered by the next migrate's run of this
-- file, which fails no test until its grants are written here).
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA config GRANT SELECT ON TABLES TO {reader};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- -- pg_cron: the job runs as the cron role ------------------------------------------------------
-- Only a superuser may change a job's role; otherwise the job keeps the role that scheduled it
-- (the owner, when it migrates), which docs/dba.md says how to change.
DO $cronjob$
BEGIN
    IF to_regclass('cron.job') IS NOT NULL
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        UPDATE cron.job SET username = {cron_name}
        WHERE jobname = 'reconcile-customers' AND database = current_database()
          AND username IS DISTINCT FROM {cron_name};
    END IF;
    IF to_regclass('config.parked_cron_jobs') IS NOT NULL THEN
        UPDATE config.parked_cron_jobs SET username = {cron_name}
        WHERE jobname = 'reconcile-customers' AND username IS DISTINCT FROM {cron_name};
    END IF;
END
$cronjob$;

-- -- row-level security: the tenant boundary in PostgreSQL ----------------------------------------
-- Who asks: the token lookup (service_state.user_for_token, SECURITY DEFINER: it needs the raw
-- bearer token, not its hash) sets hierarchy.user_id and, beside it, hierarchy.user_key: a
-- SHA-256 over a secret only the owner can read, the user and this backend's pid. Anyone may SET
-- a custom setting (PostgreSQL cannot refuse that), so the policies trust hierarchy.user_id only
-- when hierarchy.user_key matches it (service_state.request_user): a SET of another user's id
-- makes the session see nothing. No request user (no key): the runtime role sees no row.
CREATE TABLE IF NOT EXISTS service_state.secret (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key text NOT NULL
);
COMMENT ON TABLE service_state.secret IS
    'The key that signs the request user of a session (hierarchy.user_key, sql/privileges.sql); readable by the owner only. Replacing it signs every session out.';
COMMENT ON COLUMN service_state.secret.only_row IS 'Always true: one row.';
COMMENT ON COLUMN service_state.secret.key IS 'Random, made once (gen_random_uuid twice: 244 random bits).';
INSERT INTO service_state.secret (key)
VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
ON CONFLICT (only_row) DO NOTHING;
REVOKE ALL ON service_state.secret FROM PUBLIC, {app}, {reader}, {cron};

DROP FUNCTION IF EXISTS service_state.user_key(uuid);
DROP FUNCTION IF EXISTS service_state.sign_in(uuid, text, boolean);
CREATE OR REPLACE FUNCTION service_state.user_key(p_user text, p_orgs text, p_all text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
BEGIN
    SELECT s.key INTO k FROM service_state.secret s;
    RETURN encode(sha256(convert_to(k || ':' || p_user || ':' || p_orgs || ':' || p_all || ':'
                                    || pg_backend_pid()::text, 'UTF8')), 'hex');
END
$$;
COMMENT ON FUNCTION service_state.user_key(text, text, text) IS
    'The signature of a request user (its uuid, orgs and whether it sees every org) for this session (backend pid): what hierarchy.user_key must hold for the policies to trust the other settings. Owner only.';

CREATE OR REPLACE FUNCTION service_state.sign_in(p_user uuid, p_actor text, p_orgs uuid[], p_all boolean, p_local boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u text := coalesce(p_user::text, '');
    o text := CASE WHEN p_user IS NULL THEN '' ELSE coalesce(p_orgs, ARRAY[]::uuid[])::text END;
    a text := CASE WHEN p_user IS NULL THEN '' ELSE coalesce(p_all, false)::text END;
BEGIN
    PERFORM set_config('hierarchy.actor', coalesce(p_actor, ''), p_local),
            set_config('hierarchy.user_id', u, p_local),
            set_config('hierarchy.user_orgs', o, p_local),
            set_config('hierarchy.user_sees_all', a, p_local),
            set_config('hierarchy.user_key', CASE WHEN p_user IS NULL THEN '' ELSE service_state.user_key(u, o, a) END,
                       p_local);
END
$$;
COMMENT ON FUNCTION service_state.sign_in(uuid, text, uuid[], boolean, boolean) IS
    'Sets who acts (hierarchy.actor, hierarchy.user_id), the orgs it sees (hierarchy.user_orgs, hierarchy.user_sees_all) and signs them (hierarchy.user_key), for the transaction (p_local) or the session; NULL signs out. Called by the token lookup only: the runtime role cannot call it.';

-- The request's user as the policies see it: the signed settings, or nothing. One function
-- verifies the signature; the policies call the three below once per statement each (InitPlans).
CREATE OR REPLACE FUNCTION service_state.request_verified() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u text := coalesce(current_setting('hierarchy.user_id', true), '');
BEGIN
    RETURN u <> ''
       AND coalesce(current_setting('hierarchy.user_key', true), '')
           = service_state.user_key(u, coalesce(current_setting('hierarchy.user_orgs', true), ''),
                                    coalesce(current_setting('hierarchy.user_sees_all', true), ''));
END
$$;
COMMENT ON FUNCTION service_state.request_verified() IS
    'Whether the request user settings carry the signature the token lookup made (hierarchy.user_key): a SET of any of them by the session itself fails this.';

CREATE OR REPLACE FUNCTION service_state.request_user() RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN service_state.request_verified() THEN current_setting('hierarchy.user_id', true)::uuid END
$$;
COMMENT ON FUNCTION service_state.request_user() IS
    'The request''s user when its settings are signed (service_state.request_verified), else NULL: what the row-level policies key on.';

CREATE OR REPLACE FUNCTION service_state.request_orgs() RETURNS uuid[]
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN service_state.request_verified() THEN current_setting('hierarchy.user_orgs', true)::uuid[]
                ELSE ARRAY[]::uuid[] END
$$;
COMMENT ON FUNCTION service_state.request_orgs() IS
    'The orgs of the request''s user as the token lookup found them (memberships at 6.4, users.org_id before); none without a signed request user.';

CREATE OR REPLACE FUNCTION service_state.request_sees_all() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT service_state.request_verified() AND current_setting('hierarchy.user_sees_all', true)::boolean
$$;
COMMENT ON FUNCTION service_state.request_sees_all() IS
    'Whether the request''s user has a role with permission all_orgs (a super admin): the policies then let it see every row.';

CREATE OR REPLACE FUNCTION service_state.user_in_orgs(p_user uuid, p_orgs uuid[]) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    IF to_regclass('config.org_memberships') IS NOT NULL THEN
        SELECT EXISTS (SELECT 1 FROM config.org_memberships m WHERE m.user_id = p_user AND m.org_id = ANY (p_orgs))
        INTO found;
    ELSE
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM config.users u WHERE u.uuid = $1 AND u.org_id = ANY ($2))'
            INTO found USING p_user, p_orgs;
    END IF;
    RETURN found;
END
$$;
COMMENT ON FUNCTION service_state.user_in_orgs(uuid, uuid[]) IS
    'Whether user p_user belongs to one of p_orgs (memberships at 6.4, users.org_id before): the audit log''s policy for rows about users.';

-- The token lookup and the login lookup, as the runtime role may run them before it knows the
-- user: SECURITY DEFINER (they read users and memberships, which the policies hide until then).
CREATE OR REPLACE FUNCTION service_state.user_for_token(p_token text, p_org uuid, p_local boolean)
RETURNS TABLE (uuid uuid, email text, orgs uuid[], write_orgs uuid[], role text, state text,
               permissions text[], org_visible boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r record;
    p_hash bytea := sha256(convert_to(p_token, 'UTF8'));
BEGIN
    IF to_regclass('config.org_memberships') IS NOT NULL THEN
        SELECT u.uuid, u.email, m.orgs, coalesce(m.write_orgs, '{{}}') AS write_orgs, m.role,
               CASE WHEN t.revoked IS NOT NULL THEN 'revoked'
                    WHEN t.expires <= now() THEN 'expired'
                    WHEN NOT u.is_active THEN 'inactive'
                    ELSE 'ok' END AS state,
               ARRAY(SELECT rp.permission FROM config.role_permissions rp WHERE rp.role = ANY (m.roles)) AS permissions
        INTO r
        FROM config.tokens t
        JOIN config.users u ON u.uuid = t.user_id
        CROSS JOIN LATERAL (
            SELECT array_agg(x.org_id ORDER BY x.is_primary DESC, x.created, x.org_id) AS orgs,
                   array_agg(x.org_id) FILTER (WHERE x.role = ANY (ARRAY(SELECT w.role FROM config.role_permissions w
                                                                         WHERE w.permission = 'projects.write')))
                       AS write_orgs,
                   coalesce(min(x.role) FILTER (WHERE x.org_id = p_org),
                            min(x.role) FILTER (WHERE x.is_primary)) AS role,
                   coalesce(array_agg(x.role) FILTER (WHERE x.org_id = p_org), array_agg(x.role)) AS roles
            FROM config.org_memberships x
            WHERE x.user_id = u.uuid
        ) m
        WHERE t.token_hash = p_hash;
    ELSE
        EXECUTE $q$
            SELECT u.uuid, u.email, ARRAY[u.org_id] AS orgs,
                   CASE WHEN 'projects.write' = ANY (p.permissions) THEN ARRAY[u.org_id] ELSE '{{}}' END AS write_orgs,
                   u.role,
                   CASE WHEN t.revoked IS NOT NULL THEN 'revoked'
                        WHEN t.expires <= now() THEN 'expired'
                        WHEN NOT u.is_active THEN 'inactive'
                        ELSE 'ok' END AS state,
                   p.permissions
            FROM config.tokens t
            JOIN config.users u ON u.uuid = t.user_id
            CROSS JOIN LATERAL (SELECT ARRAY(SELECT rp.permission FROM config.role_permissions rp
                                             WHERE rp.role = u.role) AS permissions) p
            WHERE t.token_hash = $1
        $q$ INTO r USING p_hash;
    END IF;
    IF r.uuid IS NULL THEN
        PERFORM service_state.sign_in(NULL, NULL, NULL, NULL, p_local);
        RETURN;
    END IF;
    PERFORM service_state.sign_in(CASE WHEN r.state = 'ok' THEN r.uuid END,
                                  CASE WHEN r.state = 'ok' THEN r.email END,
                                  r.orgs, 'all_orgs' = ANY (r.permissions), p_local);
    uuid := r.uuid; email := r.email; orgs := r.orgs; write_orgs := r.write_orgs; role := r.role;
    state := r.state; permissions := r.permissions;
    org_visible := p_org IS NULL
                   OR EXISTS (SELECT 1 FROM config.orgs o
                              WHERE o.uuid = p_org AND ('all_orgs' = ANY (r.permissions) OR o.uuid = ANY (r.orgs)));
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION service_state.user_for_token(text, uuid, boolean) IS
    'The token lookup (sql/queries/auth.sql user_for_token): the user of bearer token p_token, why it is refused (state), its orgs, role and permissions, whether it may see org p_org; for a valid token it signs the session in (service_state.sign_in: for the transaction when p_local, else for the session, which the service signs out when the request ends). Memberships at 6.4, users.org_id/role before.';

-- -- passwords and tokens: the runtime role never reads a password hash nor mints a token ------
-- (issue 23) The service proves a password without the stored hash leaving the database:
-- login_challenge gives it the argon2 parameters and salt (the PHC string without its final
-- hash part), the service computes argon2's raw output from the password it was given, and
-- log_in compares that with the stored hash part and only then inserts the token, in one
-- statement. PostgreSQL cannot compute argon2, so a captured proof is as good as the password
-- for log_in: it exists only in the service's memory, for one login.
DROP FUNCTION IF EXISTS service_state.user_for_login(text);
CREATE OR REPLACE FUNCTION service_state.login_challenge(p_email text)
RETURNS TABLE (uuid uuid, email text, params text, hash_len integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT u.uuid, u.email,
           -- an argon2 PHC string: everything but its final $<hash>; NULL for anything else
           CASE WHEN u.password_hash ~ '^\$argon2(id|i|d)\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$'
                THEN regexp_replace(u.password_hash, '\$[^$]*$', '') END,
           (length(substring(u.password_hash from '\$([^$]*)$')) * 3 / 4)::integer
    FROM config.users u
    WHERE lower(u.email) = lower(p_email);
END
$$;
COMMENT ON FUNCTION service_state.login_challenge(text) IS
    'The login''s first step (sql/queries/auth.sql login_challenge): the user of an email and its argon2 parameters and salt (the PHC string without its hash part, NULL when the stored hash is no argon2 PHC string) with the length of the hash, from which the service computes the proof service_state.log_in checks. Never the hash itself.';

CREATE OR REPLACE FUNCTION service_state.log_in(p_user uuid, p_proof bytea, p_token_hash bytea, p_ttl integer,
                                                p_new_hash text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u      record;
    stored text;
BEGIN
    IF p_ttl IS NULL OR p_ttl NOT BETWEEN 1 AND 86400 THEN
        RAISE EXCEPTION 'a token lives 1 to 86400 seconds, not %', p_ttl USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_new_hash IS NOT NULL AND p_new_hash !~ '^\$argon2id\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$' THEN
        RAISE EXCEPTION 'a fresh password hash must be an argon2id PHC string' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x.uuid, x.email, x.is_active, x.password_hash INTO u FROM config.users x WHERE x.uuid = p_user;
    stored := substring(u.password_hash from '\$([A-Za-z0-9+/]+)$');
    -- sha256 of both sides: the comparison's time says nothing about the stored hash
    IF stored IS NULL OR p_proof IS NULL
       OR sha256(decode(stored || repeat('=', (4 - length(stored) % 4) % 4), 'base64')) <> sha256(p_proof) THEN
        RETURN 'wrong';
    END IF;
    IF NOT u.is_active THEN
        RETURN 'inactive';
    END IF;
    INSERT INTO config.tokens (token_hash, user_id, expires)
    VALUES (p_token_hash, u.uuid, now() + make_interval(secs => p_ttl));
    IF p_new_hash IS NOT NULL THEN  -- argon2's parameters changed since the hash was made
        PERFORM set_config('hierarchy.actor', u.email, true), set_config('hierarchy.user_id', u.uuid::text, true);
        UPDATE config.users SET password_hash = p_new_hash WHERE uuid = u.uuid;
    END IF;
    RETURN 'ok';
END
$$;
COMMENT ON FUNCTION service_state.log_in(uuid, bytea, bytea, integer, text) IS
    'The login''s second step (sql/queries/auth.sql log_in): when p_proof (argon2''s raw output for the password, computed by the service from service_state.login_challenge) matches user p_user''s stored hash, and the user is active, inserts the token p_token_hash valid for p_ttl seconds and, when given, stores p_new_hash (the same password under new argon2 parameters). Returns ok, wrong (nothing written) or inactive (the right password; nothing written). The only way the runtime role makes a token or changes a password hash.';

-- What the runtime role writes directly to users, memberships and tunables needs the permission
-- the API demands for it (users.write, tunables.write) of a signed request user: a statement
-- trigger, run as the writer. Writes made inside a SECURITY DEFINER function (the membership
-- functions, the mode switch, the promotion: each guards its own caller) run as the owner, and
-- the owner, its members and superusers (a DBA, the CLI, a migration) pass.
CREATE OR REPLACE FUNCTION service_state.writer_is_owner() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
        OR pg_has_role(current_user, (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'config'), 'MEMBER')
$$;
COMMENT ON FUNCTION service_state.writer_is_owner() IS
    'Whether the role running the statement (current_user: the owner inside a SECURITY DEFINER function) is a superuser, the owner of schema config or a member of it: the writers the guard triggers let through.';

CREATE OR REPLACE FUNCTION service_state.guard_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT service_state.writer_is_owner() THEN
        PERFORM service_state.require_request_permission(
            format('%s on %s.%s', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME), TG_ARGV[0]);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION service_state.guard_write() IS
    'Statement trigger: a write by a role other than the owner (or a member, or a superuser) needs a signed request user holding permission TG_ARGV[0] (service_state.require_request_permission, SQLSTATE 42501).';

-- A token's only change by the runtime role is logout's: revoked set once (the column privilege
-- keeps it off every other column, so expires is never extended).
CREATE OR REPLACE FUNCTION service_state.tokens_revoke_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (OLD.revoked IS NOT NULL OR NEW.revoked IS NULL)
       AND NOT service_state.writer_is_owner() THEN
        RAISE EXCEPTION 'a token can only be revoked, once: role % may not clear or change tokens.revoked', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION service_state.tokens_revoke_only() IS
    'Row trigger on config.tokens: a role other than the owner (or a member, or a superuser) may only set revoked where it is NULL (logout), never clear or change it (SQLSTATE 42501).';

CREATE OR REPLACE TRIGGER tokens_revoke_only BEFORE UPDATE ON config.tokens
    FOR EACH ROW EXECUTE FUNCTION service_state.tokens_revoke_only();
COMMENT ON TRIGGER tokens_revoke_only ON config.tokens IS
    'Logout only sets revoked (service_state.tokens_revoke_only; sql/privileges.sql).';
CREATE OR REPLACE TRIGGER users_guard_write BEFORE INSERT OR UPDATE OR DELETE ON config.users
    FOR EACH STATEMENT EXECUTE FUNCTION service_state.guard_write('users.write');
COMMENT ON TRIGGER users_guard_write ON config.users IS
    'The runtime role writes users only for a signed request user with users.write (service_state.guard_write; sql/privileges.sql).';
CREATE OR REPLACE TRIGGER tunables_guard_write BEFORE INSERT OR UPDATE OR DELETE ON config.tunables
    FOR EACH STATEMENT EXECUTE FUNCTION service_state.guard_write('tunables.write');
COMMENT ON TRIGGER tunables_guard_write ON config.tunables IS
    'The runtime role writes tunables only for a signed request user with tunables.write (service_state.guard_write; sql/privileges.sql).';
DO $guards$
BEGIN
    IF to_regclass('config.org_memberships') IS NOT NULL THEN
        CREATE OR REPLACE TRIGGER org_memberships_guard_write BEFORE INSERT OR UPDATE OR DELETE ON config.org_memberships
            FOR EACH STATEMENT EXECUTE FUNCTION service_state.guard_write('users.write');
        COMMENT ON TRIGGER org_memberships_guard_write ON config.org_memberships IS
            'The runtime role writes memberships only for a signed request user with users.write (service_state.guard_write; sql/privileges.sql).';
    END IF;
END
$guards$;

-- Column privileges: every column of users but password_hash is readable (the API lists and
-- shows users); tokens: logout sets revoked, nothing else changes.
DO $columns$
DECLARE
    cols text;
BEGIN
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
    FROM pg_attribute a
    WHERE a.attrelid = 'config.users'::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attname <> 'password_hash';
    EXECUTE format('GRANT SELECT (%s) ON config.users TO %I', cols, {app_name});
END
$columns$;
GRANT UPDATE (revoked) ON config.tokens TO {app};

-- For the audit log's policy, which exists at every release (6.0 has no customers): a plain SQL
-- function (its body is checked when called, at 6.1 and later) run as the caller, so the
-- projects it counts are those the projects' policy shows.
CREATE OR REPLACE FUNCTION service_state.customer_has_visible_project(p_customer uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = p_customer)
$$;
COMMENT ON FUNCTION service_state.customer_has_visible_project(uuid) IS
    'Whether customer p_customer holds a project the caller sees (row-level security on projects applies): the audit log policy''s rows about customers.';

CREATE OR REPLACE FUNCTION service_state.orphan_count() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT count(*) FROM config.projects WHERE customer_id IS NULL
$$;
COMMENT ON FUNCTION service_state.orphan_count() IS
    'Projects without a customer in every org: the one cross-org number the public /health and /metrics publish (sql/queries/health.sql).';

REVOKE ALL ON FUNCTION service_state.user_key(text, text, text),
    service_state.sign_in(uuid, text, uuid[], boolean, boolean) FROM PUBLIC, {app};
GRANT EXECUTE ON FUNCTION service_state.user_for_token(text, uuid, boolean), service_state.login_challenge(text),
    service_state.log_in(uuid, bytea, bytea, integer, text), service_state.require_request_permission(text, text),
    service_state.writer_is_owner(),
    service_state.request_verified(), service_state.request_user(), service_state.request_orgs(),
    service_state.request_sees_all(),
    service_state.user_in_orgs(uuid, uuid[]), service_state.orphan_count(),
    service_state.customer_has_visible_project(uuid) TO {app};

-- The policies (the projects' EXISTS in the customers' and the audit log's policies meets the
-- projects' policy too: only the user's orgs' projects count): for the runtime role only (the owner owns the tables and is not subject to them;
-- superusers bypass them; the job runs as the owner). The report role sees every row.
ALTER TABLE config.projects ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS projects_of_request_orgs ON config.projects;
CREATE POLICY projects_of_request_orgs ON config.projects TO {app}
    USING ((SELECT service_state.request_sees_all()) OR org_id = ANY ((SELECT service_state.request_orgs())::uuid[]))
    WITH CHECK ((SELECT service_state.request_sees_all()) OR org_id = ANY ((SELECT service_state.request_orgs())::uuid[]));
COMMENT ON POLICY projects_of_request_orgs ON config.projects IS
    'The runtime role sees and changes the projects of the request user''s orgs (all of them for a super admin), nothing without a signed request user.';
DROP POLICY IF EXISTS projects_reports ON config.projects;
CREATE POLICY projects_reports ON config.projects FOR SELECT TO {reader} USING (true);
COMMENT ON POLICY projects_reports ON config.projects IS 'Reports read every project.';

DO $rls$
BEGIN
    IF to_regclass('config.customers') IS NOT NULL THEN
        ALTER TABLE config.customers ENABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS customers_of_request_orgs ON config.customers;
        CREATE POLICY customers_of_request_orgs ON config.customers TO {app}
            USING ((SELECT service_state.request_sees_all())
                   OR created_by = (SELECT service_state.request_user())
                   OR EXISTS (SELECT 1 FROM config.projects p
                              WHERE p.customer_id = customers.uuid
                                AND p.org_id = ANY ((SELECT service_state.request_orgs())::uuid[])))
            WITH CHECK ((SELECT service_state.request_user()) IS NOT NULL);
        COMMENT ON POLICY customers_of_request_orgs ON config.customers IS
            'The runtime role sees the customers the request user created or that hold a project of its orgs (every one for a super admin), as the named queries'' "customer visible"; it may write only with a signed request user (the statements check the rest).';
        DROP POLICY IF EXISTS customers_reports ON config.customers;
        CREATE POLICY customers_reports ON config.customers FOR SELECT TO {reader} USING (true);
        COMMENT ON POLICY customers_reports ON config.customers IS 'Reports read every customer.';
    END IF;
    IF to_regclass('config.org_memberships') IS NOT NULL THEN
        ALTER TABLE config.org_memberships ENABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS memberships_of_request_orgs ON config.org_memberships;
        CREATE POLICY memberships_of_request_orgs ON config.org_memberships TO {app}
            USING ((SELECT service_state.request_sees_all())
                   OR user_id = (SELECT service_state.request_user())
                   OR org_id = ANY ((SELECT service_state.request_orgs())::uuid[]))
            WITH CHECK ((SELECT service_state.request_sees_all()) OR org_id = ANY ((SELECT service_state.request_orgs())::uuid[]));
        COMMENT ON POLICY memberships_of_request_orgs ON config.org_memberships IS
            'The runtime role sees the request user''s own memberships and those of its orgs (all for a super admin).';
        DROP POLICY IF EXISTS memberships_reports ON config.org_memberships;
        CREATE POLICY memberships_reports ON config.org_memberships FOR SELECT TO {reader} USING (true);
        COMMENT ON POLICY memberships_reports ON config.org_memberships IS 'Reports read every membership.';
    END IF;
    IF to_regclass('config.promoted_orgs') IS NOT NULL THEN
        ALTER TABLE config.promoted_orgs ENABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS promoted_orgs_of_request_orgs ON config.promoted_orgs;
        CREATE POLICY promoted_orgs_of_request_orgs ON config.promoted_orgs FOR SELECT TO {app}
            USING ((SELECT service_state.request_sees_all())
                   OR org_id = ANY ((SELECT service_state.request_orgs())::uuid[]));
        COMMENT ON POLICY promoted_orgs_of_request_orgs ON config.promoted_orgs IS
            'The runtime role sees which customer the request user''s orgs stand for (every org for a super admin).';
        DROP POLICY IF EXISTS promoted_orgs_reports ON config.promoted_orgs;
        CREATE POLICY promoted_orgs_reports ON config.promoted_orgs FOR SELECT TO {reader} USING (true);
        COMMENT ON POLICY promoted_orgs_reports ON config.promoted_orgs IS 'Reports read every promoted org.';
    END IF;
END
$rls$;

ALTER TABLE config.audit_log ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_of_request_orgs ON config.audit_log;
CREATE POLICY audit_of_request_orgs ON config.audit_log FOR SELECT TO {app}
    USING ((SELECT service_state.request_sees_all())
           OR ((SELECT service_state.request_user()) IS NOT NULL
               AND (object_type = 'tunables'
                    OR (object_type = 'orgs' AND object_id = ANY ((SELECT service_state.request_orgs())::uuid[]))
                    OR (object_type IN ('projects', 'users', 'org_memberships')
                        AND (coalesce(after ->> 'org_id', before ->> 'org_id')
                                 = ANY ((SELECT service_state.request_orgs())::text[])
                             OR (object_type = 'projects'
                                 AND EXISTS (SELECT 1 FROM config.projects p WHERE p.uuid = audit_log.object_id))
                             OR (object_type = 'users'
                                 AND service_state.user_in_orgs(object_id, (SELECT service_state.request_orgs())))))
                    OR (object_type = 'customers'
                        AND (coalesce(after ->> 'created_by', before ->> 'created_by')
                                 = (SELECT service_state.request_user())::text
                             OR service_state.customer_has_visible_project(object_id))))));
COMMENT ON POLICY audit_of_request_orgs ON config.audit_log IS
    'The runtime role reads the audit rows of objects the request user may see (by object, as sql/queries/audit.sql says: tunables, its orgs, the projects, users and memberships of its orgs, the customers it created or whose projects it sees; all for a super admin). Nobody but the owner writes it directly: the audit triggers run as the owner.';
DROP POLICY IF EXISTS audit_reports ON config.audit_log;
CREATE POLICY audit_reports ON config.audit_log FOR SELECT TO {reader} USING (true);
COMMENT ON POLICY audit_reports ON config.audit_log IS 'Reports read the whole audit log.';

-- -- pg_cron's state, for the runtime role's scheduler and /health -------------------------------
-- pg_cron's tables show a role only its own jobs, and its schema is not the runtime role's: the
-- cron role (whose job it is) answers, through this function it owns. Created, and given to the
-- cron role, by a superuser's migrate (USAGE on schema cron too); otherwise it answers "no pg_cron".
DO $cronstate$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND to_regprocedure('service_state.cron_job_state(double precision)') IS NOT NULL THEN
        RETURN;
    END IF;
    IF to_regnamespace('cron') IS NOT NULL AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        GRANT USAGE ON SCHEMA cron TO {cron};
    END IF;
    CREATE OR REPLACE FUNCTION service_state.cron_job_state(p_seconds double precision)
    RETURNS TABLE (present boolean, scheduled boolean, ran boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
        IF to_regnamespace('cron') IS NULL OR NOT has_schema_privilege('cron', 'USAGE')
           OR to_regclass('cron.job') IS NULL THEN
            RETURN QUERY SELECT false, false, false;
            RETURN;
        END IF;
        RETURN QUERY EXECUTE
            'SELECT true,
                    EXISTS (SELECT 1 FROM cron.job WHERE jobname = ''reconcile-customers''),
                    EXISTS (SELECT 1 FROM cron.job_run_details d
                            WHERE d.jobid = (SELECT j.jobid FROM cron.job j WHERE j.jobname = ''reconcile-customers'')
                              AND d.status = ''succeeded''
                              AND d.end_time > now() - make_interval(secs => $1))'
            USING p_seconds;
    END
    $fn$;
    COMMENT ON FUNCTION service_state.cron_job_state(double precision) IS
        'Whether pg_cron is here, schedules reconcile-customers, and ran it successfully within p_seconds (sql/queries/jobs.sql): owned by the cron role, which pg_cron''s policies let see its own job.';
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER FUNCTION service_state.cron_job_state(double precision) OWNER TO {cron};
    END IF;
    REVOKE ALL ON FUNCTION service_state.cron_job_state(double precision) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION service_state.cron_job_state(double precision) TO {app};
END
$cronstate$;

-- -- ownership: everything in the service's schemas belongs to the owner ------------------------
-- (Last: what this file created above is handed over too.)
-- A superuser (the embedded cluster, the tests) migrates: what its migrations created is handed
-- to the owner here, so SECURITY DEFINER functions run with the owner's rights, not a superuser's.
DO $own$
DECLARE
    obj record;
BEGIN
    IF current_user = {owner_name} THEN
        RETURN;  -- the owner migrates itself: everything it created is its own
    END IF;
    FOR obj IN SELECT n.nspname FROM pg_namespace n
               WHERE n.nspname IN ('config', 'service_state') AND n.nspowner <> {owner_name}::regrole LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', obj.nspname, {owner_name});
    END LOOP;
    FOR obj IN SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c
               WHERE c.relnamespace IN ('config'::regnamespace, 'service_state'::regnamespace)
                 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                 AND c.relowner <> {owner_name}::regrole
                 AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d
                                                      WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))) LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I',
                       CASE obj.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                        WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                                        ELSE 'TABLE' END,
                       obj.rel, {owner_name});
    END LOOP;
    FOR obj IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
               WHERE p.pronamespace IN ('config'::regnamespace, 'service_state'::regnamespace)
                 AND p.proowner <> {owner_name}::regrole
                 AND p.oid <> coalesce(to_regprocedure('service_state.cron_job_state(double precision)'), 0) LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', obj.fn, {owner_name});
    END LOOP;
    FOR obj IN SELECT t.oid::regtype AS typ FROM pg_type t
               WHERE t.typnamespace IN ('config'::regnamespace, 'service_state'::regnamespace)
                 AND t.typtype IN ('c', 'd', 'e') AND t.typrelid = 0
                 AND t.typowner <> {owner_name}::regrole LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO %I', obj.typ, {owner_name});
    END LOOP;
END
$own$;
