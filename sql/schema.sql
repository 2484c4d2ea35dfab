-- GENERATED FILE: do not edit. Regenerate with `make schema` (python -m service.schema_dump).
-- The schemas `config` and `service_state` of a database migrated to release 6.4, from
-- pg_dump --schema-only, normalised. Database logic is authored in migrations/ (and the
-- service's own state in sql/service_state.sql); this file is the picture of the result.

--
-- PostgreSQL database dump
--

--
-- Name: config; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA config;

--
-- Name: SCHEMA config; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA config IS 'Config API objects: orgs, projects, users, tunables, audit log (and customers from release 6.1).';

--
-- Name: service_state; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA service_state;

--
-- Name: SCHEMA service_state; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA service_state IS 'State of the service itself, outside the Config API release ladder (sql/service_state.sql): applied at every release, removed by no downgrade.';

--
-- Name: org_memberships; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.org_memberships (
    user_id uuid NOT NULL,
    org_id uuid NOT NULL,
    role text NOT NULL,
    is_primary boolean DEFAULT false NOT NULL,
    created timestamp with time zone DEFAULT now() NOT NULL,
    modified timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: TABLE org_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.org_memberships IS 'Release 6.4: the orgs a user belongs to, its role in each, and its primary org (exactly one per user; a super admin has exactly one membership and sees every org). Change it with config.add_membership, config.remove_membership, config.set_membership_role, config.set_primary_org.';

--
-- Name: COLUMN org_memberships.user_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_memberships.user_id IS 'The member (deleting the user deletes its memberships).';

--
-- Name: COLUMN org_memberships.org_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_memberships.org_id IS 'The org it belongs to.';

--
-- Name: COLUMN org_memberships.role; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_memberships.role IS 'Its role in that org: super_admin, operator or read_only (see role_permissions).';

--
-- Name: COLUMN org_memberships.is_primary; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_memberships.is_primary IS 'The user''s primary org (login lists it first; hdxcli works in orgs[0]). Exactly one per user at commit.';

--
-- Name: COLUMN org_memberships.created; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_memberships.created IS 'When the user joined the org (the upgrade copies the user''s created).';

--
-- Name: COLUMN org_memberships.modified; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_memberships.modified IS 'Last change of role or primary.';

--
-- Name: add_membership(uuid, uuid, text, boolean); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.add_membership(p_user uuid, p_org uuid, p_role text, p_primary boolean DEFAULT false) RETURNS config.org_memberships
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
DECLARE
    who  record;
    made config.org_memberships;
BEGIN
    PERFORM service_state.require_request_permission('config.add_membership', 'users.write');
    SELECT * INTO who FROM config.lock_member(p_user, p_org, false);
    PERFORM config.refuse_unknown_role(p_role);
    IF (who.member).user_id IS NOT NULL THEN
        RAISE EXCEPTION 'user % is already a member of org % (role %)', who.email, who.org_name, (who.member).role
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'org_memberships_pkey',
                  HINT = 'Change its role there with config.set_membership_role.';
    END IF;
    IF EXISTS (SELECT 1 FROM config.org_memberships m
               WHERE m.user_id = p_user AND (config.role_sees_every_org(m.role) OR config.role_sees_every_org(p_role))) THEN
        RAISE EXCEPTION 'user % cannot join org %: a super admin belongs to exactly one org (it sees every org)', who.email, who.org_name
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_super_admin_single';
    END IF;
    IF p_primary THEN
        UPDATE config.org_memberships m SET is_primary = false WHERE m.user_id = p_user AND m.is_primary;
    END IF;
    INSERT INTO config.org_memberships (user_id, org_id, role, is_primary)
    VALUES (p_user, p_org, p_role,
            p_primary OR NOT EXISTS (SELECT 1 FROM config.org_memberships m WHERE m.user_id = p_user))
    RETURNING * INTO made;
    RETURN made;
END
$$;

--
-- Name: FUNCTION add_membership(p_user uuid, p_org uuid, p_role text, p_primary boolean); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.add_membership(p_user uuid, p_org uuid, p_role text, p_primary boolean) IS 'Release 6.4: adds a user to an org with a role (p_primary: it becomes the primary org; a user''s first membership always is). Refuses an unknown user, org or role, a membership the user already has, and a second org for a super admin. Audited.';

--
-- Name: api_time(timestamp with time zone); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.api_time(p_at timestamp with time zone) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT replace(to_char(p_at, CASE WHEN date_trunc('second', p_at) = p_at
                                      THEN 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'
                                      ELSE 'YYYY-MM-DD"T"HH24:MI:SS.USTZH:TZM' END), '+00:00', 'Z')
$$;

--
-- Name: FUNCTION api_time(p_at timestamp with time zone); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.api_time(p_at timestamp with time zone) IS 'A time as the API writes it in JSON (ISO 8601, the session''s zone, Z for UTC, microseconds when not zero): for lists whose JSON SQL writes.';

--
-- Name: assign_new_project(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.assign_new_project() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
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

--
-- Name: FUNCTION assign_new_project(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.assign_new_project() IS 'Rule 5: BEFORE INSERT trigger giving a new project its customer by rules 1 to 3 (its own one is created by projects_create_own_customers).';

--
-- Name: audit_changes(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.audit_changes() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET jit TO 'off'
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $_$
DECLARE
    hidden  text[] := coalesce(TG_ARGV::text[], '{}');
    changed text;
    before  text;
    after   text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO config.audit_log (action, object_type, object_id, after)
        SELECT 'insert', TG_TABLE_NAME, n.uuid, to_jsonb(n) - hidden FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO config.audit_log (action, object_type, object_id, before)
        SELECT 'delete', TG_TABLE_NAME, o.uuid, to_jsonb(o) - hidden FROM old_rows o;
    ELSE
        -- A narrow row per changed object: the changed columns with their old and new values,
        -- compared column by column in their own types. No whole-row jsonb and no jsonb_each
        -- diff per row: the statement is written from the catalog for this table (so a column
        -- a later release adds is audited too), then run once over the transition tables.
        -- EXECUTE plans the join afresh with the transition tables' real sizes: a cached plan
        -- made for an UPDATE that changed no rows would nest-loop a later million-row update.
        -- An UPDATE that matched no row (the idle job's, every tick) writes nothing: return
        -- before writing and planning the statement.
        IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
            RETURN NULL;
        END IF;
        SELECT string_agg(format('CASE WHEN o.%1$I IS DISTINCT FROM n.%1$I THEN %1$L END', a.attname),
                          ', ' ORDER BY a.attname::text),
               string_agg(format('CASE WHEN o.%1$I IS DISTINCT FROM n.%1$I THEN jsonb_build_object(%1$L, o.%1$I)'
                                 ' ELSE ''{}''::jsonb END', a.attname), ' || ' ORDER BY a.attname::text),
               string_agg(format('CASE WHEN o.%1$I IS DISTINCT FROM n.%1$I THEN jsonb_build_object(%1$L, n.%1$I)'
                                 ' ELSE ''{}''::jsonb END', a.attname), ' || ' ORDER BY a.attname::text)
        INTO changed, before, after
        FROM pg_attribute a
        WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> ALL (hidden);
        EXECUTE format($sql$
        INSERT INTO config.audit_log (action, object_type, object_id, changed, before, after)
        SELECT 'update', $1, d.uuid, d.changed, d.before, d.after
        FROM (
            SELECT n.uuid, array_remove(ARRAY[%s]::text[], NULL) AS changed, %s AS before, %s AS after
            FROM new_rows n JOIN old_rows o USING (uuid)
        ) d
        WHERE d.changed <> '{}'
        $sql$, changed, before, after) USING TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$_$;

--
-- Name: FUNCTION audit_changes(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.audit_changes() IS 'AFTER statement trigger: writes one audit_log row per inserted, changed or deleted row (arguments: columns to leave out).';

--
-- Name: audit_memberships(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.audit_memberships() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO config.audit_log (action, object_type, object_id, after)
        SELECT 'insert', 'org_memberships', n.user_id, to_jsonb(n) FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO config.audit_log (action, object_type, object_id, before)
        SELECT 'delete', 'org_memberships', o.user_id, to_jsonb(o) FROM old_rows o;
    ELSE
        INSERT INTO config.audit_log (action, object_type, object_id, changed, before, after)
        SELECT 'update', 'org_memberships', n.user_id,
               array_remove(ARRAY[CASE WHEN o.is_primary <> n.is_primary THEN 'is_primary' END,
                                  CASE WHEN o.role <> n.role THEN 'role' END], NULL),
               jsonb_build_object('org_id', o.org_id)
                   || CASE WHEN o.is_primary <> n.is_primary THEN jsonb_build_object('is_primary', o.is_primary) ELSE '{}' END
                   || CASE WHEN o.role <> n.role THEN jsonb_build_object('role', o.role) ELSE '{}' END,
               jsonb_build_object('org_id', n.org_id)
                   || CASE WHEN o.is_primary <> n.is_primary THEN jsonb_build_object('is_primary', n.is_primary) ELSE '{}' END
                   || CASE WHEN o.role <> n.role THEN jsonb_build_object('role', n.role) ELSE '{}' END
        FROM new_rows n JOIN old_rows o USING (user_id, org_id)
        WHERE o.is_primary <> n.is_primary OR o.role <> n.role;
    END IF;
    RETURN NULL;
END
$$;

--
-- Name: FUNCTION audit_memberships(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.audit_memberships() IS 'Release 6.4: AFTER statement trigger writing one audit_log row per added, changed or removed membership (object_type org_memberships, object_id the user; an update names the org and its changed columns).';

--
-- Name: audit_tunable(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.audit_tunable() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
BEGIN
    IF NEW.value IS DISTINCT FROM OLD.value THEN
        INSERT INTO config.audit_log (action, object_type, changed, before, after)
        VALUES ('update', 'tunables', ARRAY['value'],
                jsonb_build_object('name', OLD.name, 'value', OLD.value),
                jsonb_build_object('name', NEW.name, 'value', NEW.value));
    END IF;
    RETURN NULL;
END
$$;

--
-- Name: FUNCTION audit_tunable(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.audit_tunable() IS 'AFTER UPDATE trigger on tunables: records value changes in audit_log.';

--
-- Name: check_user_memberships(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.check_user_memberships() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
DECLARE
    who       uuid;
    marker    text;
    done      text := txid_current()::text || ':' || statement_timestamp()::text;
    email     text;
    primaries integer;
    total     integer;
    sees_all  boolean;
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        who := NEW.uuid;
    ELSIF TG_OP = 'DELETE' THEN
        who := OLD.user_id;
    ELSE
        who := NEW.user_id;
    END IF;
    -- once per user and firing: every event of a batch sees the same final state (a promotion
    -- adding thousands of memberships to one user checks it once, not once per row)
    marker := 'hierarchy.members_checked_' || replace(who::text, '-', '');
    IF current_setting(marker, true) = done THEN
        RETURN NULL;
    END IF;
    PERFORM set_config(marker, done, true);
    SELECT u.email INTO email FROM config.users u WHERE u.uuid = who;
    IF NOT FOUND THEN
        RETURN NULL;  -- the user is gone (its memberships went with it)
    END IF;
    SELECT count(*) FILTER (WHERE m.is_primary), count(*),
           coalesce(bool_or(m.role IN (SELECT rp.role FROM config.role_permissions rp WHERE rp.permission = 'all_orgs')), false)
    INTO primaries, total, sees_all
    FROM config.org_memberships m WHERE m.user_id = who;
    IF primaries <> 1 THEN
        RAISE EXCEPTION 'user % must have exactly one primary org (it has %)', email, primaries
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_primary_kept',
                  HINT = 'Make another org primary first (config.set_primary_org), or add the user to an org as primary.';
    END IF;
    IF sees_all AND total > 1 THEN
        RAISE EXCEPTION 'user % is a super admin and belongs to % orgs: a super admin belongs to exactly one org (it sees every org)', email, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_super_admin_single';
    END IF;
    RETURN NULL;
END
$$;

--
-- Name: FUNCTION check_user_memberships(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.check_user_memberships() IS 'Release 6.4: deferred check at commit, once per user and firing (a transaction-local marker): a user has exactly one primary org, and a user holding a role with all_orgs has exactly one membership (SQLSTATE 23514, constraints org_memberships_primary_kept, org_memberships_super_admin_single).';

--
-- Name: count_customers(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.count_customers() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $_$
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
$_$;

--
-- Name: FUNCTION count_customers(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.count_customers() IS 'AFTER statement trigger on customers: appends the net change of the number of customers per origin to customer_counts, and writes the audit rows of new and deleted customers.';

--
-- Name: create_customers(text, uuid[], text[]); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.create_customers(p_origin text, p_keys uuid[], p_names text[]) RETURNS uuid[]
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
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

--
-- Name: FUNCTION create_customers(p_origin text, p_keys uuid[], p_names text[]); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.create_customers(p_origin text, p_keys uuid[], p_names text[]) IS 'Set-based creation of customers for projects (origin system/project) or orgs (origin default) with collision-free deterministic names; returns the uuids created.';

--
-- Name: create_own_customers(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.create_own_customers() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $_$
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
$_$;

--
-- Name: FUNCTION create_own_customers(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.create_own_customers() IS 'Rule 5: AFTER INSERT statement trigger creating, set-based, the own customers of the statement''s new projects, then running the foreign-key check.';

--
-- Name: current_actor(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.current_actor() RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce(nullif(current_setting('hierarchy.actor', true), ''), session_user::text)
$$;

--
-- Name: FUNCTION current_actor(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.current_actor() IS 'The acting user: setting hierarchy.actor when the service sets it, else the database role (psql, cron).';

--
-- Name: current_user_id(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.current_user_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$
    SELECT nullif(current_setting('hierarchy.user_id', true), '')::uuid
$$;

--
-- Name: FUNCTION current_user_id(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.current_user_id() IS 'The acting application user uuid (setting hierarchy.user_id), NULL for plain SQL sessions.';

--
-- Name: customer_count(text); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.customer_count(p_origin text) RETURNS bigint
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce(sum(delta), 0)::bigint FROM config.customer_counts WHERE p_origin IS NULL OR origin = p_origin
$$;

--
-- Name: FUNCTION customer_count(p_origin text); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.customer_count(p_origin text) IS 'How many customers exist (of origin p_origin, or all when NULL), from customer_counts.';

--
-- Name: customer_mine(uuid, boolean, uuid); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.customer_mine(p_created_by uuid, p_all_orgs boolean, p_user_id uuid) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT p_all_orgs OR p_created_by IS NOT DISTINCT FROM p_user_id $$;

--
-- Name: FUNCTION customer_mine(p_created_by uuid, p_all_orgs boolean, p_user_id uuid); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.customer_mine(p_created_by uuid, p_all_orgs boolean, p_user_id uuid) IS 'Whether a user may change or delete a customer it sees: all_orgs, or it created the customer (403 otherwise).';

--
-- Name: customer_name_candidates(text, uuid); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.customer_name_candidates(p_name text, p_key uuid) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT ARRAY[left(replace(p_name, ' ', '-'), 255),
                 left(replace(p_name, ' ', '-'), 246) || '-' || left(p_key::text, 8),
                 left(replace(p_name, ' ', '-'), 218) || '-' || p_key::text]
$$;

--
-- Name: FUNCTION customer_name_candidates(p_name text, p_key uuid); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.customer_name_candidates(p_name text, p_key uuid) IS 'Rule 4 naming: the customer names derived from a project (or org) name, most preferred first.';

--
-- Name: customer_visible(uuid, uuid, boolean, uuid, uuid); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.customer_visible(p_customer uuid, p_created_by uuid, p_all_orgs boolean, p_user_org uuid, p_user_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT p_all_orgs OR p_created_by = p_user_id
           OR EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = p_customer AND p.org_id = p_user_org)
$$;

--
-- Name: FUNCTION customer_visible(p_customer uuid, p_created_by uuid, p_all_orgs boolean, p_user_org uuid, p_user_id uuid); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.customer_visible(p_customer uuid, p_created_by uuid, p_all_orgs boolean, p_user_org uuid, p_user_id uuid) IS 'Whether a user (all_orgs, its org, its uuid) sees a customer: all_orgs, its creator, or its org holds one of the customer''s projects.';

--
-- Name: customers_guard_name(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.customers_guard_name() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
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

--
-- Name: FUNCTION customers_guard_name(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.customers_guard_name() IS 'BEFORE trigger on customers: spaces to dashes, modified bookkeeping, rule 4 (a single-project customer is named after its project).';

--
-- Name: customers_lock_projects(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.customers_lock_projects() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
BEGIN
    IF current_setting('hierarchy.internal_delete', true) IS DISTINCT FROM 'on' THEN
        LOCK TABLE config.projects IN EXCLUSIVE MODE;
    END IF;
    RETURN NULL;
END
$$;

--
-- Name: FUNCTION customers_lock_projects(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.customers_lock_projects() IS 'BEFORE DELETE statement trigger on customers: takes config.projects in EXCLUSIVE mode, so a deletion never deadlocks with a project change (see the lock order in docs/dba.md).';

--
-- Name: customers_page(boolean, uuid, uuid[], text, text, bigint, bigint); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.customers_page(p_all_orgs boolean, p_user_id uuid, p_user_orgs uuid[], p_name text, p_origin text, p_limit bigint, p_offset bigint) RETURNS TABLE(results text, total bigint)
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
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

--
-- Name: FUNCTION customers_page(p_all_orgs boolean, p_user_id uuid, p_user_orgs uuid[], p_name text, p_origin text, p_limit bigint, p_offset bigint); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.customers_page(p_all_orgs boolean, p_user_id uuid, p_user_orgs uuid[], p_name text, p_origin text, p_limit bigint, p_offset bigint) IS 'The customers page (sql/queries/customers.list): the JSON array of the page and the total. A super admin''s unfiltered page runs on a cached generic plan (planned once per session, not per request under row-level security); any other on a plan made for its values. Runs as the caller; defined by sql/privileges.sql at every release from 6.1 (at 6.0, which has no customers, it exists and is not called).';

--
-- Name: default_customer(uuid); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.default_customer(p_org_id uuid) RETURNS uuid
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
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

--
-- Name: FUNCTION default_customer(p_org_id uuid); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.default_customer(p_org_id uuid) IS 'Rule 2: the uuid of the org''s default customer (named <org>-default), created when missing.';

--
-- Name: defer_customer_check(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.defer_customer_check() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
BEGIN
    SET CONSTRAINTS config.projects_customer_id_fkey DEFERRED;
    RETURN NULL;
END
$$;

--
-- Name: FUNCTION defer_customer_check(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.defer_customer_check() IS 'Rule 5: BEFORE INSERT statement trigger deferring projects_customer_id_fkey until projects_create_own_customers has made the new projects'' customers.';

--
-- Name: demote_now(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.demote_now() RETURNS jsonb
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
DECLARE
    promo     bigint := config.promotion_in_force();
    moved     integer;
    added     integer;
    primaries integer;
    removed   integer;
    deleted   integer;
    counts    jsonb;
BEGIN
    -- first: the promotion ends, so the projects may leave the orgs their customers stand for
    UPDATE config.org_promotions p SET demoted_at = now(), demoted_by = config.current_actor() WHERE p.id = promo;

    CREATE TEMP TABLE demotion_orgs ON COMMIT DROP AS
    SELECT po.org_id, po.source_org FROM config.promoted_orgs po WHERE po.created;

    -- the moves of config.demotion_moves, written as one join (joined back to the projects by
    -- uuid, the planner reads every project even when a handful move)
    UPDATE config.projects p SET org_id = po.source_org
    FROM config.promoted_orgs po WHERE po.created AND p.org_id = po.org_id;
    GET DIAGNOSTICS moved = ROW_COUNT;

    -- a membership in a deleted org becomes one in the org its projects return to, unless the
    -- user already belongs there (that membership and its role stay)
    INSERT INTO config.org_memberships (user_id, org_id, role, is_primary)
    SELECT DISTINCT ON (m.user_id, d.source_org) m.user_id, d.source_org, m.role, false
    FROM config.org_memberships m JOIN demotion_orgs d ON d.org_id = m.org_id
    WHERE d.source_org IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM config.org_memberships k WHERE k.user_id = m.user_id AND k.org_id = d.source_org)
    ORDER BY m.user_id, d.source_org, m.is_primary DESC, m.role;
    GET DIAGNOSTICS added = ROW_COUNT;

    -- a primary in a deleted org: the primary before the promotion when the user still belongs
    -- there, else the org its projects return to, else its oldest remaining membership
    CREATE TEMP TABLE demotion_primaries ON COMMIT DROP AS
    SELECT m.user_id, m.org_id AS old_primary,
           coalesce((SELECT b.org_id FROM config.promotion_memberships b
                     JOIN config.org_memberships k ON k.user_id = b.user_id AND k.org_id = b.org_id
                     WHERE b.user_id = m.user_id AND b.is_primary
                       AND b.org_id NOT IN (SELECT d2.org_id FROM demotion_orgs d2)),
                    d.source_org,
                    (SELECT k.org_id FROM config.org_memberships k JOIN config.orgs o ON o.uuid = k.org_id
                     WHERE k.user_id = m.user_id AND k.org_id NOT IN (SELECT d2.org_id FROM demotion_orgs d2)
                     ORDER BY k.created, o.name LIMIT 1)) AS new_primary
    FROM config.org_memberships m JOIN demotion_orgs d ON d.org_id = m.org_id
    WHERE m.is_primary;
    UPDATE config.org_memberships m SET is_primary = false
    FROM demotion_primaries d WHERE m.user_id = d.user_id AND m.org_id = d.old_primary;
    UPDATE config.org_memberships m SET is_primary = true
    FROM demotion_primaries d WHERE m.user_id = d.user_id AND m.org_id = d.new_primary;
    GET DIAGNOSTICS primaries = ROW_COUNT;

    DELETE FROM config.org_memberships m USING demotion_orgs d WHERE m.org_id = d.org_id;
    GET DIAGNOSTICS removed = ROW_COUNT;

    DELETE FROM config.promotion_memberships b WHERE b.promotion_id = promo;
    DELETE FROM config.promoted_orgs po WHERE po.promotion_id = promo;
    DELETE FROM config.orgs o USING demotion_orgs d WHERE o.uuid = d.org_id;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    DROP TABLE demotion_orgs, demotion_primaries;

    counts := jsonb_build_object('promotion', promo, 'projects_moved', moved, 'memberships_added', added,
                                 'primaries_changed', primaries, 'memberships_removed', removed,
                                 'orgs_deleted', deleted);
    UPDATE config.org_promotions p SET summary = p.summary || jsonb_build_object('demotion', counts) WHERE p.id = promo;
    RETURN counts;
END
$$;

--
-- Name: FUNCTION demote_now(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.demote_now() IS 'Release 6.4: the reversal''s work, once locked and checked (call config.demote_orgs): ends the promotion, returns the projects of the created orgs, maps their memberships back, restores primaries, deletes the created orgs; returns the counts.';

--
-- Name: demote_orgs(boolean); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.demote_orgs(dry_run boolean DEFAULT false) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET jit TO 'off'
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
DECLARE
    plan jsonb;
BEGIN
    PERFORM service_state.require_request_permission('config.demote_orgs', 'all_orgs');
    PERFORM config.lock_for_promotion();
    IF config.promotion_in_force() IS NULL THEN
        RAISE EXCEPTION 'the customers are not promoted to orgs: nothing to reverse, nothing changed'
            USING ERRCODE = 'HR073';
    END IF;
    PERFORM config.refuse_blocked('reverse the promotion', 'HR071',
        (SELECT coalesce(jsonb_agg(to_jsonb(b)), '[]') FROM config.demotion_blockers() b));
    IF NOT coalesce(dry_run, false) THEN
        RETURN config.demote_now() || jsonb_build_object('dry_run', false);
    END IF;
    plan := config.demotion_report();
    RETURN config.rolled_back('SELECT config.demote_now()', '{}')
           || jsonb_build_object('dry_run', true, 'plan', plan);
END
$$;

--
-- Name: FUNCTION demote_orgs(dry_run boolean); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.demote_orgs(dry_run boolean) IS 'Release 6.4: reverses the promotion in force atomically, restoring the layout before it (docs/design.md section 11): projects back in their orgs, memberships as they were, the created orgs deleted, customers kept; the counts. Refuses, changing nothing, when not promoted (SQLSTATE HR073) or blocked (HR071, naming the first five blockers and the total; config.demotion_blockers lists them). dry_run: the same work rolled back, with its plan (config.demotion_report).';

--
-- Name: demotion_blockers(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.demotion_blockers() RETURNS TABLE(kind text, subject text, reason text, remedy text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
    SELECT service_state.require_request_permission('config.demotion_blockers', 'all_orgs');
    WITH mv AS MATERIALIZED (SELECT * FROM config.demotion_moves())
    SELECT 'no_org_to_return_to', o.name || '/' || mv.project_name,
           'the project was created after the promotion in an org whose customer held no project before it',
           'delete the project, or create it again in another org'
    FROM mv JOIN config.orgs o ON o.uuid = mv.from_org
    WHERE mv.to_org IS NULL
    UNION ALL
    SELECT 'project_name_clash', format('%s/%s', o.name, t.name),
           format('%s projects named %s would return to org %s', t.n, t.name, o.name),
           'rename all but one of them'
    FROM (SELECT d.org, d.name, count(*) AS n
          FROM (SELECT mv.to_org AS org, mv.project_name AS name FROM mv WHERE mv.to_org IS NOT NULL
                UNION ALL
                -- names are unique within an org: a clash needs a returning project, so only the
                -- projects of its name in its org (an index probe each), not the whole org
                SELECT p.org_id, p.name FROM config.projects p
                WHERE (p.org_id, p.name) IN (SELECT mv.to_org, mv.project_name FROM mv)) d
          GROUP BY d.org, d.name HAVING count(*) > 1) t
    JOIN config.orgs o ON o.uuid = t.org
    UNION ALL
    SELECT 'only_in_deleted_orgs', u.email,
           'the user belongs only to orgs the reversal deletes, none of which has an org to return to',
           'add the user to another org (hierarchy user add-org, or config.add_membership)'
    FROM config.users u
    WHERE NOT EXISTS (SELECT 1 FROM config.org_memberships m
                      LEFT JOIN config.promoted_orgs po ON po.org_id = m.org_id AND po.created
                      WHERE m.user_id = u.uuid AND (po.org_id IS NULL OR po.source_org IS NOT NULL))
    ORDER BY 1, 2
$$;

--
-- Name: FUNCTION demotion_blockers(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.demotion_blockers() IS 'Release 6.4, while promoted: what blocks the reversal, with the remedy: a project created after the promotion with no org to return to, projects of one name returning to one org, a user left with no org.';

--
-- Name: demotion_moves(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.demotion_moves() RETURNS TABLE(project_id uuid, project_name text, from_org uuid, to_org uuid)
    LANGUAGE sql STABLE
    AS $$
    SELECT p.uuid, p.name, p.org_id, po.source_org
    FROM config.promoted_orgs po
    JOIN config.projects p ON p.org_id = po.org_id
    WHERE po.created
$$;

--
-- Name: FUNCTION demotion_moves(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.demotion_moves() IS 'Release 6.4, while promoted: the projects the reversal moves, from the org the promotion created to the org its customer''s projects came from (promoted_orgs.source_org: where the promotion moved each from; a project created after the promotion goes there too; NULL: none).';

--
-- Name: demotion_report(integer); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.demotion_report(p_limit integer DEFAULT 1000) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
    WITH moves AS (
        SELECT mv.project_name AS project, f.name AS from_org, t.name AS to_org
        FROM config.demotion_moves() mv
        JOIN config.orgs f ON f.uuid = mv.from_org
        LEFT JOIN config.orgs t ON t.uuid = mv.to_org
    ), orgs AS (
        SELECT o.name AS org, c.name AS customer, s.name AS to_org,
               (SELECT count(*) FROM config.projects x WHERE x.org_id = po.org_id) AS projects,
               (SELECT count(*) FROM config.org_memberships m WHERE m.org_id = po.org_id) AS members
        FROM config.promoted_orgs po
        JOIN config.orgs o ON o.uuid = po.org_id
        JOIN config.customers c ON c.uuid = po.customer_id
        LEFT JOIN config.orgs s ON s.uuid = po.source_org
        WHERE po.created
    )
    SELECT jsonb_build_object(
        'orgs', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM orgs ORDER BY org LIMIT p_limit) r), '[]'),
        'orgs_total', (SELECT count(*) FROM orgs),
        'moves', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM moves ORDER BY to_org, project LIMIT p_limit) r), '[]'),
        'moves_total', (SELECT count(*) FROM moves))
$$;

--
-- Name: FUNCTION demotion_report(p_limit integer); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.demotion_report(p_limit integer) IS 'Release 6.4, while promoted: what the reversal would do, the first p_limit rows of each list with totals: the orgs it deletes (customer, members, projects, where they return) and the projects it moves (from, to).';

--
-- Name: downgrade_blockers(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.downgrade_blockers() RETURNS TABLE(user_id uuid, email text, orgs text[], reason text, remedy text)
    LANGUAGE sql STABLE
    AS $$
    SELECT u.uuid, u.email,
           array_agg(o.name ORDER BY m.is_primary DESC, o.name),
           format('belongs to %s orgs; release 6.1 has one org per user', count(*)),
           format('remove it from every org but its primary %s (hierarchy user remove-org %s --org NAME, or config.remove_membership)',
                  (array_agg(o.name) FILTER (WHERE m.is_primary))[1], u.email)
    FROM config.users u
    JOIN config.org_memberships m ON m.user_id = u.uuid
    JOIN config.orgs o ON o.uuid = m.org_id
    GROUP BY u.uuid, u.email
    HAVING count(*) > 1
    ORDER BY lower(u.email)
$$;

--
-- Name: FUNCTION downgrade_blockers(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.downgrade_blockers() IS 'Release 6.4: the users that block a downgrade to 6.1 (they belong to several orgs, and 6.1 has one org per user), with the remedy.';

--
-- Name: give_way_timeout(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.give_way_timeout() RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT (CASE WHEN own > 0 THEN least(own, wait) ELSE wait END)::text || 'ms'
    FROM (SELECT greatest(1, (extract(epoch FROM current_setting('deadlock_timeout')::interval) * 200)::integer) AS wait,
                 (extract(epoch FROM current_setting('lock_timeout')::interval) * 1000)::integer AS own) t
$$;

--
-- Name: FUNCTION give_way_timeout(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.give_way_timeout() IS 'The lock_timeout (a fifth of deadlock_timeout, or a shorter lock_timeout of the caller) under which a rule 4 rename waits for a name before leaving it to the job.';

--
-- Name: is_system_project(text); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.is_system_project(p_name text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT p_name IN ('hydro', 'sample_project') $$;

--
-- Name: FUNCTION is_system_project(p_name text); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.is_system_project(p_name text) IS 'Rule 1: hydro and sample_project always get one customer each (origin system).';

--
-- Name: job_lock_key(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.job_lock_key() RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hashtextextended('config.reconcile_customers', 0) $$;

--
-- Name: FUNCTION job_lock_key(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.job_lock_key() IS 'The transaction-scoped advisory lock key of the background job: SELECT pg_advisory_xact_lock(config.job_lock_key()) holds every run off.';

--
-- Name: job_sources(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.job_sources() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT ARRAY['cron', 'service', 'api', 'cli', 'upgrade', 'tunable', 'switch', 'sql']::text[]
$$;

--
-- Name: FUNCTION job_sources(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.job_sources() IS 'The sources of job runs: cron, service (fallback scheduler), api, cli, upgrade (init job), tunable (mode change), switch (switch_customer_mode), sql (a DBA).';

--
-- Name: lock_customers(uuid[]); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.lock_customers(p_customers uuid[]) RETURNS uuid[]
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
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

--
-- Name: FUNCTION lock_customers(p_customers uuid[]); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.lock_customers(p_customers uuid[]) IS 'Locks customers in uuid order before the rules decide about them (no deadlock, no write skew); returns those locked FOR UPDATE without waiting because they may need a key change (deleted, or made manual).';

--
-- Name: lock_for_promotion(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.lock_for_promotion() RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    LOCK TABLE config.projects IN EXCLUSIVE MODE;
    PERFORM 1 FROM config.customers c ORDER BY c.uuid FOR NO KEY UPDATE;
    LOCK TABLE config.org_memberships IN EXCLUSIVE MODE;
    LOCK TABLE config.orgs IN SHARE ROW EXCLUSIVE MODE;
END
$$;

--
-- Name: FUNCTION lock_for_promotion(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.lock_for_promotion() IS 'Release 6.4: the locks the promotion and its reversal take, in the lock order of docs/dba.md: projects (EXCLUSIVE), customer rows (uuid order), org_memberships (EXCLUSIVE), orgs (SHARE ROW EXCLUSIVE). A racing create, move or membership change ends before or after, never half.';

--
-- Name: lock_member(uuid, uuid, boolean); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.lock_member(p_user uuid, p_org uuid, p_must_belong boolean, OUT email text, OUT org_name text, OUT member config.org_memberships) RETURNS record
    LANGUAGE plpgsql
    AS $$
BEGIN
    SELECT u.email INTO email FROM config.users u WHERE u.uuid = p_user FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no user %', p_user
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'org_memberships_user_id_fkey';
    END IF;
    SELECT o.name INTO org_name FROM config.orgs o WHERE o.uuid = p_org;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no org %', p_org
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'org_memberships_org_id_fkey';
    END IF;
    SELECT m.* INTO member FROM config.org_memberships m WHERE m.user_id = p_user AND m.org_id = p_org;
    IF p_must_belong AND member.user_id IS NULL THEN
        RAISE EXCEPTION 'user % is not a member of org %', email, org_name
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_member',
                  HINT = 'Add the user to the org first (config.add_membership).';
    END IF;
END
$$;

--
-- Name: FUNCTION lock_member(p_user uuid, p_org uuid, p_must_belong boolean, OUT email text, OUT org_name text, OUT member config.org_memberships); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.lock_member(p_user uuid, p_org uuid, p_must_belong boolean, OUT email text, OUT org_name text, OUT member config.org_memberships) IS 'Release 6.4: locks a user''s row and returns its email, the org''s name and its membership there (NULLs when none); refuses an unknown user or org, and a missing membership when p_must_belong.';

--
-- Name: may_name_customer(uuid, boolean, uuid, uuid); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.may_name_customer(p_customer uuid, p_all_orgs boolean, p_user_org uuid, p_user_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT p_customer IS NULL
           OR EXISTS (SELECT 1 FROM config.customers c
                      WHERE c.uuid = p_customer
                        AND config.customer_visible(c.uuid, c.created_by, p_all_orgs, p_user_org, p_user_id))
$$;

--
-- Name: FUNCTION may_name_customer(p_customer uuid, p_all_orgs boolean, p_user_org uuid, p_user_id uuid); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.may_name_customer(p_customer uuid, p_all_orgs boolean, p_user_org uuid, p_user_id uuid) IS 'Whether a user may name this customer for a project (create, update): none named, or one it sees (config.customer_visible).';

--
-- Name: misnamed_single_project_customers(uuid[]); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.misnamed_single_project_customers(p_customers uuid[]) RETURNS TABLE(uuid uuid, name text, project_name text, project_id uuid)
    LANGUAGE sql STABLE
    AS $$
    SELECT c.uuid, c.name, one.names[1], one.ids[1]
    FROM config.customers c
    CROSS JOIN LATERAL (
        SELECT array_agg(p.name) AS names, array_agg(p.uuid) AS ids
        FROM (SELECT x.name, x.uuid FROM config.projects x WHERE x.customer_id = c.uuid LIMIT 2) p
    ) one
    WHERE c.uuid = ANY (p_customers) AND cardinality(one.ids) = 1
      AND c.name <> ALL (config.customer_name_candidates(one.names[1], one.ids[1]))
$$;

--
-- Name: FUNCTION misnamed_single_project_customers(p_customers uuid[]); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.misnamed_single_project_customers(p_customers uuid[]) IS 'Rule 4: the given customers that hold exactly one project but do not carry its name (with that project).';

--
-- Name: mode_tunable(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.mode_tunable() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'turbine_api_feature_migrate_projects_to_orgs'::text $$;

--
-- Name: FUNCTION mode_tunable(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.mode_tunable() IS 'The name of the mode tunable: true, a customer per project (rule 3); false, one default customer per org (rule 2).';

--
-- Name: on_mode_changed(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.on_mode_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET jit TO 'off'
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(config.job_lock_key());
    LOCK TABLE config.projects IN EXCLUSIVE MODE;
    PERFORM config.reconcile_customers(source => 'tunable', wait => true);
    RETURN NULL;
END
$$;

--
-- Name: FUNCTION on_mode_changed(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.on_mode_changed() IS 'Rule 7: AFTER UPDATE trigger on the mode tunable running the job in the same transaction.';

--
-- Name: org_visible(uuid, boolean, uuid); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.org_visible(p_org uuid, p_all_orgs boolean, p_user_org uuid) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT p_all_orgs OR p_org = p_user_org $$;

--
-- Name: FUNCTION org_visible(p_org uuid, p_all_orgs boolean, p_user_org uuid); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.org_visible(p_org uuid, p_all_orgs boolean, p_user_org uuid) IS 'Whether a user (all_orgs, its org) may see an org''s projects: all_orgs, or its own org.';

--
-- Name: orphan_is_due(uuid, timestamp with time zone, boolean, timestamp with time zone, uuid); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.orphan_is_due(p_uuid uuid, p_orphaned_at timestamp with time zone, p_force boolean, p_due_before timestamp with time zone, p_batch_last uuid) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT (p_force OR p_orphaned_at IS NULL OR p_orphaned_at <= p_due_before)
       AND (p_batch_last IS NULL OR p_uuid <= p_batch_last)
$$;

--
-- Name: FUNCTION orphan_is_due(p_uuid uuid, p_orphaned_at timestamp with time zone, p_force boolean, p_due_before timestamp with time zone, p_batch_last uuid); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.orphan_is_due(p_uuid uuid, p_orphaned_at timestamp with time zone, p_force boolean, p_due_before timestamp with time zone, p_batch_last uuid) IS 'Rule 6: whether the job may re-home an orphan now (and, for batched runs, whether it is in this batch).';

--
-- Name: orphans_due_before(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.orphans_due_before() RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    AS $$
    SELECT greatest(
        now() - make_interval(secs => config.tunable('customer_orphan_grace_seconds')::text::integer),
        (SELECT modified FROM config.tunables WHERE name = config.mode_tunable()))
$$;

--
-- Name: FUNCTION orphans_due_before(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.orphans_due_before() IS 'Rule 6: orphans orphaned at or before this instant are due (grace period over, or the mode changed since).';

--
-- Name: own_customer_id(uuid); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.own_customer_id(p_project uuid) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT md5('config.customers:' || p_project::text)::uuid $$;

--
-- Name: FUNCTION own_customer_id(p_project uuid); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.own_customer_id(p_project uuid) IS 'Rule 5: the uuid of the customer created for a new project of its own (system projects, per-project mode).';

--
-- Name: per_project_mode(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.per_project_mode() RETURNS boolean
    LANGUAGE sql STABLE
    AS $$ SELECT config.tunable(config.mode_tunable()) = 'true'::jsonb $$;

--
-- Name: FUNCTION per_project_mode(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.per_project_mode() IS 'Whether the mode tunable asks for a customer per project (rule 3) rather than one default customer per org (rule 2).';

--
-- Name: projects_settle(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.projects_settle() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET jit TO 'off'
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $_$
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
$_$;

--
-- Name: FUNCTION projects_settle(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.projects_settle() IS 'AFTER statement trigger on projects: calls settle_customers for the customers the statement touched.';

--
-- Name: promote_customers(boolean); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.promote_customers(dry_run boolean DEFAULT false) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET jit TO 'off'
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
DECLARE
    since timestamptz;
BEGIN
    PERFORM service_state.require_request_permission('config.promote_customers', 'all_orgs');
    PERFORM config.lock_for_promotion();
    SELECT p.promoted_at INTO since FROM config.org_promotions p WHERE p.demoted_at IS NULL;
    IF FOUND THEN
        RAISE EXCEPTION 'the customers are already promoted to orgs (since %): nothing changed; reverse it first with `hierarchy orgs demote`',
            to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
            USING ERRCODE = 'HR072';
    END IF;
    PERFORM config.refuse_blocked('promote customers to orgs', 'HR070',
        (SELECT coalesce(jsonb_agg(to_jsonb(b)), '[]') FROM config.promotion_blockers() b));
    IF NOT coalesce(dry_run, false) THEN
        RETURN config.promote_now() || jsonb_build_object('dry_run', false);
    END IF;
    RETURN config.rolled_back('SELECT config.promote_now(p_report => true)', '{}')
           || jsonb_build_object('dry_run', true);
END
$$;

--
-- Name: FUNCTION promote_customers(dry_run boolean); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.promote_customers(dry_run boolean) IS 'Release 6.4: promotes every customer to an org atomically (docs/design.md section 11): the counts. Refuses, changing nothing, when already promoted (SQLSTATE HR072) or blocked (HR070, naming the first five blockers and the total; config.promotion_blockers lists them). dry_run: the same work rolled back, with its plan (config.promotion_report).';

--
-- Name: promote_now(boolean); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.promote_now(p_report boolean DEFAULT false) RETURNS jsonb
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
DECLARE
    promo    bigint;
    mapped   integer;
    made     integer;
    moved    integer;
    added    integer;
    primaries integer;
    counts   jsonb;
BEGIN
    INSERT INTO config.org_promotions (per_project) VALUES (config.per_project_mode()) RETURNING id INTO promo;

    -- the orgs, and what each stands for
    WITH m AS MATERIALIZED (
        SELECT x.*, CASE WHEN x.creates THEN gen_random_uuid() ELSE x.org_id END AS target
        FROM config.promotion_map() x
    ), created AS (
        INSERT INTO config.orgs (uuid, name) SELECT m.target, m.org_name FROM m WHERE m.creates RETURNING 1
    ), stands AS (
        INSERT INTO config.promoted_orgs (org_id, customer_id, promotion_id, created, source_org)
        SELECT m.target, m.customer_id, promo, m.creates, m.source_org FROM m
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM created), (SELECT count(*) FROM stands) INTO made, mapped;
    -- its size decides the plans below: a few rows (single mode) probe the projects of the
    -- created orgs through their indexes, many (per-project) hash them; unanalysed, the planner
    -- guesses and reads every project either way
    ANALYZE config.promoted_orgs;

    -- the memberships as they were
    INSERT INTO config.promotion_memberships (user_id, org_id, promotion_id, role, is_primary)
    SELECT m.user_id, m.org_id, promo, m.role, m.is_primary FROM config.org_memberships m;

    -- each project into the org its customer stands for: only created orgs receive any (the
    -- blockers refuse a default customer holding another org's projects), every project of a
    -- created org comes from its source_org (they refuse a customer spanning orgs), so the move
    -- is its own record (config.demotion_moves)
    UPDATE config.projects p SET org_id = po.org_id
    FROM config.promoted_orgs po
    WHERE po.created AND po.customer_id = p.customer_id AND p.org_id <> po.org_id;
    GET DIAGNOSTICS moved = ROW_COUNT;

    -- role R in org X: role R in every new org that received X's projects (super admins see
    -- every org already and keep their one membership)
    INSERT INTO config.org_memberships (user_id, org_id, role, is_primary)
    SELECT b.user_id, po.org_id, b.role, false
    FROM config.promotion_memberships b
    JOIN config.promoted_orgs po ON po.created AND po.source_org = b.org_id
    WHERE NOT config.role_sees_every_org(b.role);
    GET DIAGNOSTICS added = ROW_COUNT;

    -- a primary org left without projects: the new org that received most of them (ties: name)
    CREATE TEMP TABLE promotion_primaries ON COMMIT DROP AS
    SELECT b.user_id, b.org_id AS old_primary, s.org_id AS new_primary
    FROM config.promotion_memberships b
    JOIN (SELECT DISTINCT ON (po.source_org) po.source_org, po.org_id
          FROM config.promoted_orgs po
          JOIN config.orgs o ON o.uuid = po.org_id
          JOIN (SELECT x.org_id, count(*) AS n FROM config.projects x
                WHERE x.org_id IN (SELECT y.org_id FROM config.promoted_orgs y WHERE y.created)
                GROUP BY x.org_id) c ON c.org_id = po.org_id
          WHERE po.created AND po.source_org IS NOT NULL
          ORDER BY po.source_org, c.n DESC, o.name) s
      ON s.source_org = b.org_id
    WHERE b.is_primary AND NOT config.role_sees_every_org(b.role)
      AND NOT EXISTS (SELECT 1 FROM config.projects x WHERE x.org_id = b.org_id);
    UPDATE config.org_memberships m SET is_primary = false
    FROM promotion_primaries d WHERE m.user_id = d.user_id AND m.org_id = d.old_primary;
    UPDATE config.org_memberships m SET is_primary = true
    FROM promotion_primaries d WHERE m.user_id = d.user_id AND m.org_id = d.new_primary;
    GET DIAGNOSTICS primaries = ROW_COUNT;
    DROP TABLE promotion_primaries;

    counts := jsonb_build_object('promotion', promo, 'orgs_created', made, 'orgs_mapped', mapped - made,
                                 'projects_moved', moved, 'memberships_added', added,
                                 'primaries_changed', primaries);
    UPDATE config.org_promotions p SET summary = counts WHERE p.id = promo;
    IF p_report THEN
        counts := counts || jsonb_build_object('plan', config.promotion_report());
    END IF;
    RETURN counts;
END
$$;

--
-- Name: FUNCTION promote_now(p_report boolean); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.promote_now(p_report boolean) IS 'Release 6.4: the promotion''s work, once locked and checked (call config.promote_customers): creates and maps the orgs, records the memberships'' before-images, moves the projects, adds the memberships and moves primaries; returns the counts (p_report: and what it did, config.promotion_report).';

--
-- Name: promotion_blockers(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.promotion_blockers() RETURNS TABLE(kind text, subject text, reason text, remedy text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $_$
    SELECT service_state.require_request_permission('config.promotion_blockers', 'all_orgs');
    WITH m AS MATERIALIZED (SELECT * FROM config.promotion_map())
    SELECT 'orphan', o.name || '/' || p.name, 'project has no customer',
           'give it a customer (release 6.4 cannot have orphans; this database was changed by hand)'
    FROM config.projects p JOIN config.orgs o ON o.uuid = p.org_id
    WHERE p.customer_id IS NULL
    UNION ALL
    SELECT 'customer_spans_orgs', m.customer_name,
           format('its %s projects lie in %s orgs (%s): promoting it would let one org''s users see another''s projects',
                  m.projects, m.source_orgs,
                  (SELECT string_agg(DISTINCT o.name, ', ') FROM config.projects x JOIN config.orgs o ON o.uuid = x.org_id
                   WHERE x.customer_id = m.customer_id)),
           'regroup them so each customer holds the projects of one org (downgrade with `hierarchy migrate --to 6.1`, move them with `customers ... remove_projects/add_projects`, upgrade again)'
    FROM m WHERE m.source_orgs > 1
    UNION ALL
    SELECT 'default_customer_elsewhere', m.customer_name,
           format('default customer of org %s holds projects of org %s', m.org_name,
                  (SELECT o.name FROM config.orgs o WHERE o.uuid = m.source_org)),
           'regroup its projects under a customer of their own org (downgrade to 6.1 to regroup)'
    FROM m WHERE NOT m.creates AND m.source_orgs = 1 AND m.source_org IS DISTINCT FROM m.org_id
    UNION ALL
    SELECT 'org_name_invalid', m.customer_name,
           'the customer''s name is not a valid org name (1 to 255 characters: letters, digits, _ . -; starts with a letter or digit)',
           'rename the customer (PATCH /config/v1/customers/{uuid}/ {"name": ...})'
    FROM m WHERE m.creates AND NOT (m.org_name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$' AND length(m.org_name) <= 255)
    UNION ALL
    SELECT 'org_name_taken', m.customer_name,
           format('the new org''s name %s is taken by another org', m.org_name),
           'rename the customer or the org'
    FROM m WHERE m.creates AND EXISTS (SELECT 1 FROM config.orgs o WHERE o.name = m.org_name)
    UNION ALL
    SELECT 'project_name_clash', format('%s/%s', t.org_name, t.name),
           format('%s projects named %s would land in org %s', t.n, t.name, t.org_name),
           'rename all but one of them'
    FROM (SELECT m.org_name, x.name, count(*) AS n
          FROM config.projects x JOIN m ON m.customer_id = x.customer_id
          -- names are unique within an org (projects_org_name_unique), so projects of one name
          -- meet in an org only from a customer spanning orgs or from two customers landing in
          -- one org: read those customers' projects only (an index probe each), not every project
          WHERE m.source_orgs > 1
             OR m.org_name IN (SELECT m2.org_name FROM m m2 GROUP BY m2.org_name HAVING count(*) > 1)
          GROUP BY m.org_name, x.name HAVING count(*) > 1) t
    ORDER BY 1, 2
$_$;

--
-- Name: FUNCTION promotion_blockers(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.promotion_blockers() IS 'Release 6.4: what blocks the promotion of customers to orgs, with the remedy: orphans, a customer whose projects lie in several orgs, a default customer holding another org''s projects, a customer name that is not a valid org name or is another org''s, projects of one name landing in one org. Empty: config.promote_customers may run. (No primary-org blocker: a user''s primary is always decided, docs/design.md.)';

--
-- Name: promotion_in_force(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.promotion_in_force() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT p.id FROM config.org_promotions p WHERE p.demoted_at IS NULL $$;

--
-- Name: FUNCTION promotion_in_force(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.promotion_in_force() IS 'Release 6.4: the id of the promotion in force, NULL when the customers are not promoted.';

--
-- Name: promotion_map(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.promotion_map() RETURNS TABLE(customer_id uuid, customer_name text, origin text, creates boolean, org_id uuid, org_name text, source_org uuid, source_orgs integer, projects bigint)
    LANGUAGE sql STABLE
    AS $$
    SELECT c.uuid, c.name, c.origin, c.origin <> 'default',
           CASE WHEN c.origin = 'default' THEN c.default_for_org END,
           CASE WHEN c.origin = 'default' THEN d.name ELSE c.name END,
           p.orgs[1], coalesce(cardinality(p.orgs), 0), coalesce(p.projects, 0)
    FROM config.customers c
    LEFT JOIN config.orgs d ON d.uuid = c.default_for_org
    LEFT JOIN (SELECT x.customer_id, array_agg(DISTINCT x.org_id) AS orgs, count(*) AS projects
               FROM config.projects x GROUP BY x.customer_id) p ON p.customer_id = c.uuid
$$;

--
-- Name: FUNCTION promotion_map(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.promotion_map() IS 'Release 6.4: the promotion''s mapping, one row per customer: whether it creates an org (every customer but a default one) and its name (the customer''s; a default customer stands for its own org), and the orgs its projects are in now (source_org when one).';

--
-- Name: promotion_report(integer); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.promotion_report(p_limit integer DEFAULT 1000) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
    WITH orgs AS (
        SELECT o.name AS org, c.name AS customer, c.origin, po.created, s.name AS from_org,
               (SELECT count(*) FROM config.projects x WHERE x.org_id = po.org_id) AS projects
        FROM config.promoted_orgs po
        JOIN config.orgs o ON o.uuid = po.org_id
        JOIN config.customers c ON c.uuid = po.customer_id
        LEFT JOIN config.orgs s ON s.uuid = po.source_org
    ), moves AS (
        -- every project of a created org came from its source org (right after the promotion,
        -- as the dry run reads it; later, projects created since are listed too)
        SELECT p.name AS project, f.name AS from_org, t.name AS to_org
        FROM config.promoted_orgs po
        JOIN config.projects p ON p.org_id = po.org_id
        JOIN config.orgs f ON f.uuid = po.source_org
        JOIN config.orgs t ON t.uuid = po.org_id
        WHERE po.created
    ), members AS (
        SELECT u.email, o.name AS org, m.role, m.is_primary,
               b.user_id IS NULL AS added, coalesce(b.is_primary, false) AS was_primary
        FROM config.org_memberships m
        JOIN config.users u ON u.uuid = m.user_id
        JOIN config.orgs o ON o.uuid = m.org_id
        LEFT JOIN config.promotion_memberships b ON b.user_id = m.user_id AND b.org_id = m.org_id
        WHERE b.user_id IS NULL OR b.is_primary <> m.is_primary
    )
    SELECT jsonb_build_object(
        'orgs', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM orgs ORDER BY NOT created, org LIMIT p_limit) r), '[]'),
        'orgs_total', (SELECT count(*) FROM orgs),
        'moves', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM moves ORDER BY to_org, project LIMIT p_limit) r), '[]'),
        'moves_total', (SELECT count(*) FROM moves),
        'memberships', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM members ORDER BY lower(email), NOT is_primary, org LIMIT p_limit) r), '[]'),
        'memberships_total', (SELECT count(*) FROM members))
$$;

--
-- Name: FUNCTION promotion_report(p_limit integer); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.promotion_report(p_limit integer) IS 'Release 6.4: what the promotion in force did, the first p_limit rows of each list with totals: orgs (created or mapped: name, customer, origin, from which org, projects), projects moved (from, to: every project of a created org, so right after it, as the dry run reads it, exactly the moves), memberships added or whose primary flag changed.';

--
-- Name: reconcile_customers(boolean, boolean, text, boolean, integer); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.reconcile_customers(dry_run boolean DEFAULT false, force boolean DEFAULT false, source text DEFAULT 'sql'::text, wait boolean DEFAULT false, batch_size integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET jit TO 'off'
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $_$
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
$_$;

--
-- Name: FUNCTION reconcile_customers(dry_run boolean, force boolean, source text, wait boolean, batch_size integer); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.reconcile_customers(dry_run boolean, force boolean, source text, wait boolean, batch_size integer) IS 'The background job (rules 1-4, 6, 8): homes due orphans; force ignores the grace period; dry_run returns the planned changes and changes nothing; wait waits for a running job instead of returning; batch_size homes at most that many orphans (call again until projects_associated is 0); records a job_runs row. Run it: SELECT config.reconcile_customers(force => true);';

--
-- Name: reconcile_orphans(boolean, boolean, integer); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.reconcile_orphans(p_force boolean, p_plan boolean, p_batch_size integer) RETURNS jsonb
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
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

--
-- Name: FUNCTION reconcile_orphans(p_force boolean, p_plan boolean, p_batch_size integer); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.reconcile_orphans(p_force boolean, p_plan boolean, p_batch_size integer) IS 'The job''s work: homes due orphans by rules 1 to 3 (no lock, no bookkeeping: call reconcile_customers).';

--
-- Name: refuse_blocked(text, text, jsonb); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.refuse_blocked(p_what text, p_code text, p_blockers jsonb) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    total integer := jsonb_array_length(p_blockers);
    first text;
BEGIN
    IF total = 0 THEN
        RETURN;
    END IF;
    SELECT string_agg(format('%s %s: %s', b->>'kind', b->>'subject', b->>'reason'), '; ')
    INTO first FROM (SELECT b FROM jsonb_array_elements(p_blockers) b LIMIT 5) x;
    IF total > 5 THEN
        first := format('%s; and %s more', first, total - 5);
    END IF;
    RAISE EXCEPTION 'cannot %: % blocker(s): %; nothing changed', p_what, total, first
        USING ERRCODE = p_code, DETAIL = p_blockers::text,
              HINT = 'hierarchy orgs check lists every one with its remedy.';
END
$$;

--
-- Name: FUNCTION refuse_blocked(p_what text, p_code text, p_blockers jsonb); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.refuse_blocked(p_what text, p_code text, p_blockers jsonb) IS 'Release 6.4: raises SQLSTATE p_code (HR070 promotion, HR071 reversal) naming the first five blockers and their total when there are any; DETAIL holds all of them as JSON.';

--
-- Name: refuse_customer_change(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.refuse_customer_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
BEGIN
    RAISE EXCEPTION 'project % belongs to customer % for good: from release 6.4 a project''s customer cannot be changed',
        OLD.name, (SELECT c.name FROM config.customers c WHERE c.uuid = OLD.customer_id)
        USING ERRCODE = 'check_violation', CONSTRAINT = 'projects_customer_final', COLUMN = 'customer_id',
              HINT = 'Associations are final from 6.4; to regroup projects, downgrade with `hierarchy migrate --to 6.1`.';
END
$$;

--
-- Name: FUNCTION refuse_customer_change(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.refuse_customer_change() IS 'Release 6.4: BEFORE UPDATE OF customer_id trigger refusing any change of a project''s customer (SQLSTATE 23514, constraint projects_customer_final).';

--
-- Name: refuse_deleting_held_customer(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.refuse_deleting_held_customer() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
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

--
-- Name: FUNCTION refuse_deleting_held_customer(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.refuse_deleting_held_customer() IS 'Release 6.4: BEFORE DELETE trigger on customers refusing to delete one that holds projects, saying how many (SQLSTATE 23514, constraint customers_keep_projects).';

--
-- Name: refuse_losing_promoted(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.refuse_losing_promoted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
DECLARE
    lost text;
BEGIN
    IF config.promotion_in_force() IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'orgs' THEN
        IF TG_OP = 'DELETE' THEN
            SELECT string_agg(o.name, ', ' ORDER BY o.name) INTO lost FROM old_rows o
            WHERE EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.org_id = o.uuid)
               OR EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.source_org = o.uuid)
               OR EXISTS (SELECT 1 FROM config.promotion_memberships b WHERE b.org_id = o.uuid);
        ELSE
            SELECT string_agg(o.name, ', ' ORDER BY o.name) INTO lost FROM old_rows o
            WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.uuid = o.uuid)
              AND (EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.org_id = o.uuid)
                   OR EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.source_org = o.uuid)
                   OR EXISTS (SELECT 1 FROM config.promotion_memberships b WHERE b.org_id = o.uuid));
        END IF;
        IF lost IS NOT NULL THEN
            RAISE EXCEPTION 'org(s) % are part of the promotion in force (the org a customer stands for, the org its projects return to, or a membership the reversal restores): reverse it first with `hierarchy orgs demote`', lost
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'orgs_promotion_kept';
        END IF;
    ELSE
        IF TG_OP = 'DELETE' THEN
            SELECT string_agg(c.name, ', ' ORDER BY c.name) INTO lost FROM old_rows c
            WHERE EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.customer_id = c.uuid);
        ELSE
            SELECT string_agg(c.name, ', ' ORDER BY c.name) INTO lost FROM old_rows c
            WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.uuid = c.uuid)
              AND EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.customer_id = c.uuid);
        END IF;
        IF lost IS NOT NULL THEN
            RAISE EXCEPTION 'customer(s) % stand for orgs while the customers are promoted: reverse the promotion first with `hierarchy orgs demote`', lost
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'customers_promotion_kept';
        END IF;
    END IF;
    RETURN NULL;
END
$$;

--
-- Name: FUNCTION refuse_losing_promoted(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.refuse_losing_promoted() IS 'Release 6.4, while promoted: AFTER DELETE or UPDATE statement trigger on orgs and customers refusing to lose (delete, or change the uuid of) an org or customer the promotion in force names in config.promoted_orgs or config.promotion_memberships (SQLSTATE 23503, constraint orgs_promotion_kept or customers_promotion_kept). Nothing to check when not promoted.';

--
-- Name: refuse_project_outside_customer_org(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.refuse_project_outside_customer_org() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
DECLARE
    stands  uuid;
    bad     record;
    n       bigint;
BEGIN
    IF config.promotion_in_force() IS NULL THEN
        RETURN CASE WHEN TG_LEVEL = 'ROW' THEN NEW END;
    END IF;
    IF TG_LEVEL = 'STATEMENT' THEN
        SELECT x.name, x.customer_id, x.stands, count(*) OVER () AS n INTO bad
        FROM (SELECT r.name, r.customer_id, po.org_id AS stands
              FROM new_rows r LEFT JOIN config.promoted_orgs po ON po.customer_id = r.customer_id
              WHERE po.org_id IS DISTINCT FROM r.org_id) x
        ORDER BY x.name LIMIT 1;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        n := bad.n;
        RAISE EXCEPTION 'project % must be in the org its customer % stands for (%): the customers are promoted to orgs%',
            bad.name, (SELECT c.name FROM config.customers c WHERE c.uuid = bad.customer_id),
            coalesce((SELECT o.name FROM config.orgs o WHERE o.uuid = bad.stands), 'none: it was created after the promotion'),
            CASE WHEN n > 1 THEN format(' (and %s more projects)', n - 1) ELSE '' END
            USING ERRCODE = 'check_violation', CONSTRAINT = 'projects_org_is_customer_org', COLUMN = 'customer_id',
                  HINT = 'Name the customer the project''s org stands for (GET /config/v1/orgs/{org} shows it).';
    END IF;
    IF TG_OP = 'INSERT' AND NEW.customer_id IS NULL THEN
        -- the org is its customer: a project created in it without one (hdxcli sends only the
        -- name) gets the customer the org stands for; an org standing for none leaves it NULL
        SELECT po.customer_id INTO NEW.customer_id FROM config.promoted_orgs po WHERE po.org_id = NEW.org_id;
        IF NEW.customer_id IS NULL THEN
            RETURN NEW;  -- refused by customer_id NOT NULL: "This field is required."
        END IF;
    END IF;
    SELECT po.org_id INTO stands FROM config.promoted_orgs po WHERE po.customer_id = NEW.customer_id;
    IF stands IS DISTINCT FROM NEW.org_id THEN
        RAISE EXCEPTION 'project % must be in the org its customer % stands for (%): the customers are promoted to orgs',
            NEW.name, (SELECT c.name FROM config.customers c WHERE c.uuid = NEW.customer_id),
            coalesce((SELECT o.name FROM config.orgs o WHERE o.uuid = stands), 'none: it was created after the promotion')
            USING ERRCODE = 'check_violation', CONSTRAINT = 'projects_org_is_customer_org', COLUMN = 'customer_id',
                  HINT = 'Name the customer the project''s org stands for (GET /config/v1/orgs/{org} shows it).';
    END IF;
    RETURN NEW;
END
$$;

--
-- Name: FUNCTION refuse_project_outside_customer_org(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.refuse_project_outside_customer_org() IS 'Release 6.4, while promoted: refuses a project whose org is not the org its customer stands for (SQLSTATE 23514, constraint projects_org_is_customer_org): BEFORE INSERT row trigger (a project created without a customer in an org that stands for one gets it) and AFTER UPDATE statement trigger (one set-based check of the updated rows, naming the first).';

--
-- Name: refuse_unknown_role(text); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.refuse_unknown_role(p_role text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM config.roles r WHERE r.name = p_role) THEN
        RAISE EXCEPTION 'unknown role %: use one of %', p_role,
            (SELECT string_agg(r.name, ', ' ORDER BY r.name) FROM config.roles r)
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'org_memberships_role_fkey';
    END IF;
END
$$;

--
-- Name: FUNCTION refuse_unknown_role(p_role text); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.refuse_unknown_role(p_role text) IS 'Release 6.4: refuses a role that config.roles does not have, listing those it has.';

--
-- Name: remove_membership(uuid, uuid); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.remove_membership(p_user uuid, p_org uuid) RETURNS config.org_memberships
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
DECLARE
    who  record;
    gone config.org_memberships;
BEGIN
    PERFORM service_state.require_request_permission('config.remove_membership', 'users.write');
    SELECT * INTO who FROM config.lock_member(p_user, p_org, true);
    IF (who.member).is_primary THEN
        RAISE EXCEPTION 'org % is the primary org of user %: %', who.org_name, who.email,
            CASE WHEN (SELECT count(*) FROM config.org_memberships m WHERE m.user_id = p_user) = 1
                 THEN 'it is the user''s only org; a user belongs to at least one'
                 ELSE 'make another of its orgs primary first' END
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_primary_kept',
                  HINT = 'config.set_primary_org(user, other org), then remove this one.';
    END IF;
    DELETE FROM config.org_memberships m WHERE m.user_id = p_user AND m.org_id = p_org RETURNING * INTO gone;
    RETURN gone;
END
$$;

--
-- Name: FUNCTION remove_membership(p_user uuid, p_org uuid); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.remove_membership(p_user uuid, p_org uuid) IS 'Release 6.4: removes a user from an org. Refuses an unknown user or org, an org the user does not belong to, and its primary org (so also its last one): make another org primary first. Audited.';

--
-- Name: rename_single_project_customers(uuid[]); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.rename_single_project_customers(p_customers uuid[]) RETURNS integer
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
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

--
-- Name: FUNCTION rename_single_project_customers(p_customers uuid[]); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.rename_single_project_customers(p_customers uuid[]) IS 'Rule 4: names each given customer that has exactly one project after that project.';

--
-- Name: role_sees_every_org(text); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.role_sees_every_org(p_role text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT EXISTS (SELECT 1 FROM config.role_permissions rp WHERE rp.role = p_role AND rp.permission = 'all_orgs')
$$;

--
-- Name: FUNCTION role_sees_every_org(p_role text); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.role_sees_every_org(p_role text) IS 'Release 6.4: whether a role holds all_orgs (super_admin); a user holding it has exactly one membership.';

--
-- Name: rolled_back(text, jsonb); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.rolled_back(p_statement text, p_args jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION rolled_back(p_statement text, p_args jsonb); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.rolled_back(p_statement text, p_args jsonb) IS 'Dry runs: the jsonb result of p_statement (given p_args as $1), with everything it changed rolled back.';

--
-- Name: schema_migration(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.schema_migration() RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT '0005.org-promotion'::text $$;

--
-- Name: FUNCTION schema_migration(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.schema_migration() IS 'The last migration applied (from 0004 on; absent: the first migration of config.schema_release()). Read by hierarchy migrate when a release spans several migrations.';

--
-- Name: schema_release(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.schema_release() RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT '6.4'::text $$;

--
-- Name: FUNCTION schema_release(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.schema_release() IS 'The Config API release this schema is at (6.0 before Customers, 6.1 with them).';

--
-- Name: set_membership_role(uuid, uuid, text); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.set_membership_role(p_user uuid, p_org uuid, p_role text) RETURNS config.org_memberships
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
DECLARE
    who     record;
    changed config.org_memberships;
BEGIN
    PERFORM service_state.require_request_permission('config.set_membership_role', 'users.write');
    SELECT * INTO who FROM config.lock_member(p_user, p_org, true);
    PERFORM config.refuse_unknown_role(p_role);
    IF config.role_sees_every_org(p_role)
       AND EXISTS (SELECT 1 FROM config.org_memberships m WHERE m.user_id = p_user AND m.org_id <> p_org) THEN
        RAISE EXCEPTION 'user % belongs to % orgs: a super admin belongs to exactly one org (it sees every org)', who.email,
            (SELECT count(*) FROM config.org_memberships m WHERE m.user_id = p_user)
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_super_admin_single',
                  HINT = 'Remove its other memberships first.';
    END IF;
    UPDATE config.org_memberships m SET role = p_role
    WHERE m.user_id = p_user AND m.org_id = p_org
    RETURNING * INTO changed;
    RETURN changed;
END
$$;

--
-- Name: FUNCTION set_membership_role(p_user uuid, p_org uuid, p_role text); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.set_membership_role(p_user uuid, p_org uuid, p_role text) IS 'Release 6.4: gives a user a role in one of its orgs. Refuses an unknown user, org or role, an org the user does not belong to, and super_admin for a user of several orgs. Audited (only when it changes).';

--
-- Name: set_primary_org(uuid, uuid); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.set_primary_org(p_user uuid, p_org uuid) RETURNS config.org_memberships
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
DECLARE
    who     record;
    changed config.org_memberships;
BEGIN
    PERFORM service_state.require_request_permission('config.set_primary_org', 'users.write');
    SELECT * INTO who FROM config.lock_member(p_user, p_org, true);
    IF NOT (who.member).is_primary THEN
        UPDATE config.org_memberships m SET is_primary = false WHERE m.user_id = p_user AND m.is_primary;
        UPDATE config.org_memberships m SET is_primary = true WHERE m.user_id = p_user AND m.org_id = p_org;
    END IF;
    SELECT m.* INTO changed FROM config.org_memberships m WHERE m.user_id = p_user AND m.org_id = p_org;
    RETURN changed;
END
$$;

--
-- Name: FUNCTION set_primary_org(p_user uuid, p_org uuid); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.set_primary_org(p_user uuid, p_org uuid) IS 'Release 6.4: makes one of a user''s orgs its primary org (the old primary stays a membership). Refuses an unknown user or org and an org the user does not belong to. Audited.';

--
-- Name: settle_customers(uuid[]); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.settle_customers(p_customers uuid[]) RETURNS integer
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
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

--
-- Name: FUNCTION settle_customers(p_customers uuid[]); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.settle_customers(p_customers uuid[]) IS 'Tidies the customers a project change touched: empty auto-created ones deleted, those whose own project left made manual (or queued while a project joins them), rule 4 names applied.';

--
-- Name: settle_unsettled(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.settle_unsettled() RETURNS integer
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION settle_unsettled(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.settle_unsettled() IS 'Settles the queued customers (config.customers_unsettled) that can be locked without waiting; returns how many it renamed.';

--
-- Name: switch_customer_mode(boolean, boolean); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.switch_customer_mode(per_project boolean, dry_run boolean DEFAULT false) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET jit TO 'off'
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $_$
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
$_$;

--
-- Name: FUNCTION switch_customer_mode(per_project boolean, dry_run boolean); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.switch_customer_mode(per_project boolean, dry_run boolean) IS 'Rule 9: switch to per-project customers (true) or one default customer per org (false) atomically; manual customers are untouched. dry_run changes nothing and names what the switch would do: the projects it would move (from, to, why) and the customers it would dissolve, the first 1000 of each with totals.';

--
-- Name: switch_mode_now(boolean); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.switch_mode_now(p_per_project boolean) RETURNS jsonb
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
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

--
-- Name: FUNCTION switch_mode_now(p_per_project boolean); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.switch_mode_now(p_per_project boolean) IS 'The work of switch_customer_mode, without the lock and the dry-run wrapper.';

--
-- Name: switch_mode_plan(boolean); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.switch_mode_plan(p_per_project boolean) RETURNS jsonb
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
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

--
-- Name: FUNCTION switch_mode_plan(p_per_project boolean); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.switch_mode_plan(p_per_project boolean) IS 'Rule 9 dry run: does switch_mode_now and lists the projects that moved (from, to, why) and the customers dissolved, the first 1000 of each with totals; the caller rolls it back.';

--
-- Name: touch_modified(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.touch_modified() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
BEGIN
    NEW.modified := now();
    RETURN NEW;
END
$$;

--
-- Name: FUNCTION touch_modified(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.touch_modified() IS 'BEFORE UPDATE trigger: sets modified = now().';

--
-- Name: track_orphans(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.track_orphans() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $$
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

--
-- Name: FUNCTION track_orphans(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.track_orphans() IS 'Rule 6: BEFORE UPDATE OF customer_id trigger setting orphaned_at (also fires for ON DELETE SET NULL).';

--
-- Name: tunable(text); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.tunable(p_name text) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
    SELECT value FROM config.tunables WHERE name = p_name
$$;

--
-- Name: FUNCTION tunable(p_name text); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.tunable(p_name text) IS 'The value of one tunable, as jsonb.';

--
-- Name: tunables_validate(); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.tunables_validate() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'config', 'pg_temp'
    AS $_$
DECLARE
    json_type text := CASE NEW.value_type WHEN 'integer' THEN 'number' ELSE NEW.value_type END;
BEGIN
    IF jsonb_typeof(NEW.value) IS DISTINCT FROM json_type
       OR (NEW.value_type = 'integer' AND NEW.value::text !~ '^-?[0-9]+$') THEN
        RAISE EXCEPTION 'tunable % must be % (got %)', NEW.name, NEW.value_type, NEW.value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.value_type = 'integer' AND NEW.minimum IS NOT NULL AND NEW.value::text::numeric < NEW.minimum THEN
        RAISE EXCEPTION 'tunable % must be at least % (got %)', NEW.name, NEW.minimum, NEW.value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.value_type = 'integer'
       AND NEW.value::text::numeric > least(coalesce(NEW.maximum, 2147483647), 2147483647) THEN
        RAISE EXCEPTION 'tunable % must be at most % (got %)',
            NEW.name, least(coalesce(NEW.maximum, 2147483647), 2147483647), NEW.value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.value IS DISTINCT FROM OLD.value THEN
        NEW.modified := now();
        NEW.modified_by := config.current_actor();
    END IF;
    RETURN NEW;
END
$_$;

--
-- Name: FUNCTION tunables_validate(); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.tunables_validate() IS 'BEFORE trigger on tunables: type and minimum checks, modified/modified_by bookkeeping.';

--
-- Name: upgrade_blockers(text); Type: FUNCTION; Schema: config; Owner: -
--

CREATE FUNCTION config.upgrade_blockers(release text) RETURNS TABLE(blocker text, org_id uuid, org_name text, project_id uuid, project_name text, since timestamp with time zone, reason text, remedy text)
    LANGUAGE plpgsql STABLE
    AS $_$
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
$_$;

--
-- Name: FUNCTION upgrade_blockers(release text); Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON FUNCTION config.upgrade_blockers(release text) IS 'Pre-upgrade check: what blocks an upgrade to the given release (from 6.4: every orphaned project), with the reason and the remedy; no rows means the upgrade may go ahead. SELECT * FROM config.upgrade_blockers(''6.4'');';

--
-- Name: cron_job_state(double precision); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.cron_job_state(p_seconds double precision) RETURNS TABLE(present boolean, scheduled boolean, ran boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
    $_$;

--
-- Name: FUNCTION cron_job_state(p_seconds double precision); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.cron_job_state(p_seconds double precision) IS 'Whether pg_cron is here, schedules reconcile-customers, and ran it successfully within p_seconds (sql/queries/jobs.sql): owned by the cron role, which pg_cron''s policies let see its own job.';

--
-- Name: customer_has_visible_project(uuid); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.customer_has_visible_project(p_customer uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = p_customer)
$$;

--
-- Name: FUNCTION customer_has_visible_project(p_customer uuid); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.customer_has_visible_project(p_customer uuid) IS 'Whether customer p_customer holds a project the caller sees (row-level security on projects applies): the audit log policy''s rows about customers.';

--
-- Name: guard_write(); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.guard_write() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF NOT service_state.writer_is_owner() THEN
        PERFORM service_state.require_request_permission(
            format('%s on %s.%s', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME), TG_ARGV[0]);
    END IF;
    RETURN NULL;
END
$$;

--
-- Name: FUNCTION guard_write(); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.guard_write() IS 'Statement trigger: a write by a role other than the owner (or a member, or a superuser) needs a signed request user holding permission TG_ARGV[0] (service_state.require_request_permission, SQLSTATE 42501).';

--
-- Name: log_in(uuid, bytea, bytea, integer, text); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.log_in(p_user uuid, p_proof bytea, p_token_hash bytea, p_ttl integer, p_new_hash text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;

--
-- Name: FUNCTION log_in(p_user uuid, p_proof bytea, p_token_hash bytea, p_ttl integer, p_new_hash text); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.log_in(p_user uuid, p_proof bytea, p_token_hash bytea, p_ttl integer, p_new_hash text) IS 'The login''s second step (sql/queries/auth.sql log_in): when p_proof (argon2''s raw output for the password, computed by the service from service_state.login_challenge) matches user p_user''s stored hash, and the user is active, inserts the token p_token_hash valid for p_ttl seconds and, when given, stores p_new_hash (the same password under new argon2 parameters). Returns ok, wrong (nothing written) or inactive (the right password; nothing written). The only way the runtime role makes a token or changes a password hash.';

--
-- Name: login_challenge(text); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.login_challenge(p_email text) RETURNS TABLE(uuid uuid, email text, params text, hash_len integer)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;

--
-- Name: FUNCTION login_challenge(p_email text); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.login_challenge(p_email text) IS 'The login''s first step (sql/queries/auth.sql login_challenge): the user of an email and its argon2 parameters and salt (the PHC string without its hash part, NULL when the stored hash is no argon2 PHC string) with the length of the hash, from which the service computes the proof service_state.log_in checks. Never the hash itself.';

--
-- Name: orphan_count(); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.orphan_count() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT count(*) FROM config.projects WHERE customer_id IS NULL
$$;

--
-- Name: FUNCTION orphan_count(); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.orphan_count() IS 'Projects without a customer in every org: the one cross-org number the public /health and /metrics publish (sql/queries/health.sql).';

--
-- Name: recent_attempts(timestamp with time zone[], integer); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.recent_attempts(attempts timestamp with time zone[], window_seconds integer) RETURNS timestamp with time zone[]
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce(array_agg(a ORDER BY a), '{}')
    FROM unnest(attempts) AS a
    WHERE a > now() - make_interval(secs => window_seconds)
$$;

--
-- Name: FUNCTION recent_attempts(attempts timestamp with time zone[], window_seconds integer); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.recent_attempts(attempts timestamp with time zone[], window_seconds integer) IS 'The attempts still inside the window of window_seconds, oldest first.';

--
-- Name: request_orgs(); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.request_orgs() RETURNS uuid[]
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE WHEN service_state.request_verified() THEN current_setting('hierarchy.user_orgs', true)::uuid[]
                ELSE ARRAY[]::uuid[] END
$$;

--
-- Name: FUNCTION request_orgs(); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.request_orgs() IS 'The orgs of the request''s user as the token lookup found them (memberships at 6.4, users.org_id before); none without a signed request user.';

--
-- Name: request_sees_all(); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.request_sees_all() RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT service_state.request_verified() AND current_setting('hierarchy.user_sees_all', true)::boolean
$$;

--
-- Name: FUNCTION request_sees_all(); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.request_sees_all() IS 'Whether the request''s user has a role with permission all_orgs (a super admin): the policies then let it see every row.';

--
-- Name: request_user(); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.request_user() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE WHEN service_state.request_verified() THEN current_setting('hierarchy.user_id', true)::uuid END
$$;

--
-- Name: FUNCTION request_user(); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.request_user() IS 'The request''s user when its settings are signed (service_state.request_verified), else NULL: what the row-level policies key on.';

--
-- Name: request_verified(); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.request_verified() RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    u text := coalesce(current_setting('hierarchy.user_id', true), '');
BEGIN
    RETURN u <> ''
       AND coalesce(current_setting('hierarchy.user_key', true), '')
           = service_state.user_key(u, coalesce(current_setting('hierarchy.user_orgs', true), ''),
                                    coalesce(current_setting('hierarchy.user_sees_all', true), ''));
END
$$;

--
-- Name: FUNCTION request_verified(); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.request_verified() IS 'Whether the request user settings carry the signature the token lookup made (hierarchy.user_key): a SET of any of them by the session itself fails this.';

--
-- Name: require_request_permission(text, text); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.require_request_permission(p_function text, p_permission text) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    who  uuid;
    held boolean;
BEGIN
    -- A superuser, or a member of the schema's owner (a DBA, the CLI on the owner's URL, a
    -- migration): it could do the same work without the function. session_user: inside a
    -- SECURITY DEFINER function current_user is the owner, whoever called.
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user)
       OR pg_has_role(session_user, (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'config'), 'MEMBER') THEN
        RETURN;
    END IF;
    who := service_state.request_user();
    IF who IS NULL THEN
        RAISE EXCEPTION '% needs a signed-in request user with permission %, and this session (role %) has none: call it through the API, or connect as the owner or a superuser',
            p_function, p_permission, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- the permissions of every role the user holds, as the token lookup finds them for a path
    -- outside /orgs/{org}/ (service_state.user_for_token with p_org NULL)
    IF to_regclass('config.org_memberships') IS NOT NULL THEN
        SELECT EXISTS (SELECT 1 FROM config.org_memberships m
                       JOIN config.role_permissions rp ON rp.role = m.role
                       WHERE m.user_id = who AND rp.permission = p_permission)
        INTO held;
    ELSE
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM config.users u JOIN config.role_permissions rp ON rp.role = u.role
                                WHERE u.uuid = $1 AND rp.permission = $2)'
            INTO held USING who, p_permission;
    END IF;
    IF NOT held THEN
        RAISE EXCEPTION '% needs permission %, which the request user % does not have', p_function, p_permission, who
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$_$;

--
-- Name: FUNCTION require_request_permission(p_function text, p_permission text); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.require_request_permission(p_function text, p_permission text) IS 'The guard the SECURITY DEFINER functions that do more than their caller may call first: a superuser or a member of the schema''s owner passes; any other session (the runtime role) needs a signed request user (service_state.request_user) whose roles hold permission p_permission, else SQLSTATE 42501 naming p_function. Called by them only.';

--
-- Name: sign_in(uuid, text, uuid[], boolean, boolean); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.sign_in(p_user uuid, p_actor text, p_orgs uuid[], p_all boolean, p_local boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: FUNCTION sign_in(p_user uuid, p_actor text, p_orgs uuid[], p_all boolean, p_local boolean); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.sign_in(p_user uuid, p_actor text, p_orgs uuid[], p_all boolean, p_local boolean) IS 'Sets who acts (hierarchy.actor, hierarchy.user_id), the orgs it sees (hierarchy.user_orgs, hierarchy.user_sees_all) and signs them (hierarchy.user_key), for the transaction (p_local) or the session; NULL signs out. Called by the token lookup only: the runtime role cannot call it.';

--
-- Name: tokens_revoke_only(); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.tokens_revoke_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF (OLD.revoked IS NOT NULL OR NEW.revoked IS NULL)
       AND NOT service_state.writer_is_owner() THEN
        RAISE EXCEPTION 'a token can only be revoked, once: role % may not clear or change tokens.revoked', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

--
-- Name: FUNCTION tokens_revoke_only(); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.tokens_revoke_only() IS 'Row trigger on config.tokens: a role other than the owner (or a member, or a superuser) may only set revoked where it is NULL (logout), never clear or change it (SQLSTATE 42501).';

--
-- Name: user_for_token(text, uuid, boolean); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.user_for_token(p_token text, p_org uuid, p_local boolean) RETURNS TABLE(uuid uuid, email text, orgs uuid[], write_orgs uuid[], role text, state text, permissions text[], org_visible boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    r record;
    p_hash bytea := sha256(convert_to(p_token, 'UTF8'));
BEGIN
    IF to_regclass('config.org_memberships') IS NOT NULL THEN
        SELECT u.uuid, u.email, m.orgs, coalesce(m.write_orgs, '{}') AS write_orgs, m.role,
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
                   CASE WHEN 'projects.write' = ANY (p.permissions) THEN ARRAY[u.org_id] ELSE '{}' END AS write_orgs,
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
$_$;

--
-- Name: FUNCTION user_for_token(p_token text, p_org uuid, p_local boolean); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.user_for_token(p_token text, p_org uuid, p_local boolean) IS 'The token lookup (sql/queries/auth.sql user_for_token): the user of bearer token p_token, why it is refused (state), its orgs, role and permissions, whether it may see org p_org; for a valid token it signs the session in (service_state.sign_in: for the transaction when p_local, else for the session, which the service signs out when the request ends). Memberships at 6.4, users.org_id/role before.';

--
-- Name: user_in_orgs(uuid, uuid[]); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.user_in_orgs(p_user uuid, p_orgs uuid[]) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;

--
-- Name: FUNCTION user_in_orgs(p_user uuid, p_orgs uuid[]); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.user_in_orgs(p_user uuid, p_orgs uuid[]) IS 'Whether user p_user belongs to one of p_orgs (memberships at 6.4, users.org_id before): the audit log''s policy for rows about users.';

--
-- Name: user_key(text, text, text); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.user_key(p_user text, p_orgs text, p_all text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    k text;
BEGIN
    SELECT s.key INTO k FROM service_state.secret s;
    RETURN encode(sha256(convert_to(k || ':' || p_user || ':' || p_orgs || ':' || p_all || ':'
                                    || pg_backend_pid()::text, 'UTF8')), 'hex');
END
$$;

--
-- Name: FUNCTION user_key(p_user text, p_orgs text, p_all text); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.user_key(p_user text, p_orgs text, p_all text) IS 'The signature of a request user (its uuid, orgs and whether it sees every org) for this session (backend pid): what hierarchy.user_key must hold for the policies to trust the other settings. Owner only.';

--
-- Name: without_attempt(timestamp with time zone[], timestamp with time zone); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.without_attempt(attempts timestamp with time zone[], attempt timestamp with time zone) RETURNS timestamp with time zone[]
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT CASE WHEN array_position(attempts, attempt) IS NULL THEN attempts
                ELSE attempts[:array_position(attempts, attempt) - 1]
                     || attempts[array_position(attempts, attempt) + 1:] END
$$;

--
-- Name: FUNCTION without_attempt(attempts timestamp with time zone[], attempt timestamp with time zone); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.without_attempt(attempts timestamp with time zone[], attempt timestamp with time zone) IS 'attempts without one occurrence of attempt: an attempt taken back (a success, or a refusal by the other scope).';

--
-- Name: writer_is_owner(); Type: FUNCTION; Schema: service_state; Owner: -
--

CREATE FUNCTION service_state.writer_is_owner() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
        OR pg_has_role(current_user, (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'config'), 'MEMBER')
$$;

--
-- Name: FUNCTION writer_is_owner(); Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON FUNCTION service_state.writer_is_owner() IS 'Whether the role running the statement (current_user: the owner inside a SECURITY DEFINER function) is a superuser, the owner of schema config or a member of it: the writers the guard triggers let through.';

--
-- Name: audit_log; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.audit_log (
    id bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    actor text DEFAULT config.current_actor() NOT NULL,
    action text NOT NULL,
    object_type text NOT NULL,
    object_id uuid,
    changed text[],
    before jsonb,
    after jsonb
);

--
-- Name: TABLE audit_log; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.audit_log IS 'Who changed what: one row per changed object, written by triggers whoever writes (API, job, psql).';

--
-- Name: COLUMN audit_log.at; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.audit_log.at IS 'When the change was made (transaction start).';

--
-- Name: COLUMN audit_log.actor; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.audit_log.actor IS 'Application user (hierarchy.actor) or database role.';

--
-- Name: COLUMN audit_log.action; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.audit_log.action IS 'insert, update, delete, or a named operation (e.g. downgrade).';

--
-- Name: COLUMN audit_log.object_type; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.audit_log.object_type IS 'Table name of the object: orgs, projects, customers, tunables, users, org_memberships (release 6.4; object_id is the user).';

--
-- Name: COLUMN audit_log.object_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.audit_log.object_id IS 'uuid of the changed object (NULL for tunables and summary rows such as a downgrade).';

--
-- Name: COLUMN audit_log.changed; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.audit_log.changed IS 'For updates: the columns whose value changed.';

--
-- Name: COLUMN audit_log.before; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.audit_log.before IS 'For updates the changed columns only; for deletes the whole row.';

--
-- Name: COLUMN audit_log.after; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.audit_log.after IS 'For updates the changed columns only; for inserts the whole row.';

--
-- Name: audit_log_id_seq; Type: SEQUENCE; Schema: config; Owner: -
--

ALTER TABLE config.audit_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME config.audit_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: customer_counts; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.customer_counts (
    id bigint NOT NULL,
    origin text NOT NULL,
    delta bigint NOT NULL
);

--
-- Name: TABLE customer_counts; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.customer_counts IS 'Net changes of the number of customers per origin; sum(delta) is the count. Written by config.count_customers (triggers customers_audit_insert/_delete, customers_count_update/_truncate), which also compacts it.';

--
-- Name: COLUMN customer_counts.origin; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.customer_counts.origin IS 'The origin whose count changed.';

--
-- Name: COLUMN customer_counts.delta; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.customer_counts.delta IS 'By how much (negative for deletions and re-labelled customers).';

--
-- Name: customer_counts_id_seq; Type: SEQUENCE; Schema: config; Owner: -
--

ALTER TABLE config.customer_counts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME config.customer_counts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: customers; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.customers (
    uuid uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    description text,
    origin text DEFAULT 'manual'::text NOT NULL,
    default_for_org uuid,
    created_for_project uuid,
    created_by uuid DEFAULT config.current_user_id(),
    created timestamp with time zone DEFAULT now() NOT NULL,
    modified timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT customers_name_valid CHECK (((name ~ '^[^[:space:][:cntrl:]]+$'::text) AND (length(name) <= 255))),
    CONSTRAINT customers_origin_known CHECK ((origin = ANY (ARRAY['system'::text, 'default'::text, 'project'::text, 'manual'::text]))),
    CONSTRAINT customers_origin_links CHECK ((((origin = 'default'::text) = (default_for_org IS NOT NULL)) AND ((origin = ANY (ARRAY['system'::text, 'project'::text])) = (created_for_project IS NOT NULL))))
);

--
-- Name: TABLE customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.customers IS 'Customers: global objects grouping projects (release 6.1). A later release promotes them to orgs.';

--
-- Name: COLUMN customers.name; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.customers.name IS 'Unique; spaces are stored as dashes; 1 to 255 characters, no whitespace or control characters. A customer with exactly one project carries that project''s name.';

--
-- Name: COLUMN customers.origin; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.customers.origin IS 'Why it exists: system (hydro, sample_project), default (the org''s single default customer), project (created for one project in per-project mode), manual (created by an administrator).';

--
-- Name: COLUMN customers.default_for_org; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.customers.default_for_org IS 'For origin default: the org whose default customer this is.';

--
-- Name: COLUMN customers.created_for_project; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.customers.created_for_project IS 'For origins system and project: the project it was created for (no foreign key: the customer is deleted with its last project).';

--
-- Name: COLUMN customers.created_by; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.customers.created_by IS 'The application user who created it (NULL for the job and plain SQL); operators see the customers they created.';

--
-- Name: customers_unsettled; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.customers_unsettled (
    customer_id uuid NOT NULL,
    queued timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: TABLE customers_unsettled; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.customers_unsettled IS 'Customers whose rule-4 name or empty-customer cleanup had to be skipped because a concurrent transaction held them (it was adding a project, or renaming to the same name); the next statement that settles customers (config.settle_unsettled), or the next job run, settles them. Empty when nothing is pending.';

--
-- Name: COLUMN customers_unsettled.customer_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.customers_unsettled.customer_id IS 'The customer to settle (no foreign key: a customer deleted meanwhile is simply skipped).';

--
-- Name: COLUMN customers_unsettled.queued; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.customers_unsettled.queued IS 'When a transaction left it for the job.';

--
-- Name: job_runs; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.job_runs (
    id bigint NOT NULL,
    source text NOT NULL,
    dry_run boolean NOT NULL,
    forced boolean NOT NULL,
    skipped boolean DEFAULT false NOT NULL,
    started timestamp with time zone NOT NULL,
    finished timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    customers_created integer DEFAULT 0 NOT NULL,
    projects_associated integer DEFAULT 0 NOT NULL,
    customers_renamed integer DEFAULT 0 NOT NULL,
    orphans_waiting integer DEFAULT 0 NOT NULL,
    orphans_unresolved integer DEFAULT 0 NOT NULL,
    error text,
    CONSTRAINT job_runs_source_known CHECK ((source = ANY (config.job_sources())))
);

--
-- Name: TABLE job_runs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.job_runs IS 'One row per run of config.reconcile_customers; rows older than 7 days are pruned by the job.';

--
-- Name: COLUMN job_runs.source; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.source IS 'Who started the run: cron, service (fallback scheduler), api, cli, upgrade (init job), tunable (mode change), switch (switch_customer_mode), sql (a DBA).';

--
-- Name: COLUMN job_runs.dry_run; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.dry_run IS 'true for a dry run: the counts are what it would have done; nothing changed.';

--
-- Name: COLUMN job_runs.forced; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.forced IS 'true when the run ignored the orphan grace period.';

--
-- Name: COLUMN job_runs.skipped; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.skipped IS 'true when another run held the lock, so this one did nothing.';

--
-- Name: COLUMN job_runs.started; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.started IS 'When the run started (clock time, not transaction start).';

--
-- Name: COLUMN job_runs.finished; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.finished IS 'When the run finished.';

--
-- Name: COLUMN job_runs.customers_created; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.customers_created IS 'Customers the run created.';

--
-- Name: COLUMN job_runs.projects_associated; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.projects_associated IS 'Orphans the run gave a customer.';

--
-- Name: COLUMN job_runs.customers_renamed; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.customers_renamed IS 'Customers renamed after their single project (rule 4) during the run.';

--
-- Name: COLUMN job_runs.orphans_waiting; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.orphans_waiting IS 'Orphans left after the run (within their grace period, or unresolved).';

--
-- Name: COLUMN job_runs.orphans_unresolved; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.orphans_unresolved IS 'Due orphans the run could not home (no free customer name); should stay 0.';

--
-- Name: COLUMN job_runs.error; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.job_runs.error IS 'The error that stopped the run, if any (the run''s changes were rolled back).';

--
-- Name: job_runs_id_seq; Type: SEQUENCE; Schema: config; Owner: -
--

ALTER TABLE config.job_runs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME config.job_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: org_promotions; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.org_promotions (
    id bigint NOT NULL,
    promoted_at timestamp with time zone DEFAULT now() NOT NULL,
    promoted_by text DEFAULT config.current_actor() NOT NULL,
    per_project boolean NOT NULL,
    demoted_at timestamp with time zone,
    demoted_by text,
    summary jsonb DEFAULT '{}'::jsonb NOT NULL
);

--
-- Name: TABLE org_promotions; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.org_promotions IS 'Release 6.4: every promotion of customers to orgs (config.promote_customers) and its reversal (config.demote_orgs); at most one is in force (demoted_at NULL).';

--
-- Name: COLUMN org_promotions.promoted_at; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_promotions.promoted_at IS 'When the promotion committed.';

--
-- Name: COLUMN org_promotions.promoted_by; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_promotions.promoted_by IS 'Who promoted (the audit actor).';

--
-- Name: COLUMN org_promotions.per_project; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_promotions.per_project IS 'The mode tunable at the time: true, a customer per project (multi-tenant); false, one default customer per org (single-tenant).';

--
-- Name: COLUMN org_promotions.demoted_at; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_promotions.demoted_at IS 'When the reversal committed; NULL while the promotion is in force.';

--
-- Name: COLUMN org_promotions.demoted_by; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_promotions.demoted_by IS 'Who reversed it.';

--
-- Name: COLUMN org_promotions.summary; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.org_promotions.summary IS 'Counts: orgs created and mapped, projects moved, memberships added, primaries changed; and those of the reversal.';

--
-- Name: org_promotions_id_seq; Type: SEQUENCE; Schema: config; Owner: -
--

ALTER TABLE config.org_promotions ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME config.org_promotions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: orgs; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.orgs (
    uuid uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    created timestamp with time zone DEFAULT now() NOT NULL,
    modified timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT orgs_name_valid CHECK (((name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$'::text) AND (length(name) <= 255)))
);

--
-- Name: TABLE orgs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.orgs IS 'Organisations: the top of the hierarchy. Release 6.0 has one.';

--
-- Name: COLUMN orgs.name; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.orgs.name IS '1 to 255 characters: letters, digits, _ . - ; starts with a letter or digit.';

--
-- Name: parked_cron_jobs; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.parked_cron_jobs (
    jobname text NOT NULL,
    schedule text NOT NULL,
    command text NOT NULL,
    nodename text,
    nodeport integer,
    database text,
    username text,
    active boolean,
    parked timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: TABLE parked_cron_jobs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.parked_cron_jobs IS 'Release 6.4: the pg_cron jobs the upgrade unscheduled (reconcile-customers), restored as they were by the downgrade to 6.1. Empty where pg_cron is not installed.';

--
-- Name: COLUMN parked_cron_jobs.jobname; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.parked_cron_jobs.jobname IS 'The cron.job jobname.';

--
-- Name: COLUMN parked_cron_jobs.schedule; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.parked_cron_jobs.schedule IS 'Its cron schedule.';

--
-- Name: COLUMN parked_cron_jobs.command; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.parked_cron_jobs.command IS 'Its SQL command.';

--
-- Name: COLUMN parked_cron_jobs.nodename; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.parked_cron_jobs.nodename IS 'The cron.job nodename it had.';

--
-- Name: COLUMN parked_cron_jobs.nodeport; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.parked_cron_jobs.nodeport IS 'The cron.job nodeport it had.';

--
-- Name: COLUMN parked_cron_jobs.database; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.parked_cron_jobs.database IS 'The database it ran in.';

--
-- Name: COLUMN parked_cron_jobs.username; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.parked_cron_jobs.username IS 'The role it ran as.';

--
-- Name: COLUMN parked_cron_jobs.active; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.parked_cron_jobs.active IS 'Whether it was active.';

--
-- Name: COLUMN parked_cron_jobs.parked; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.parked_cron_jobs.parked IS 'When the upgrade unscheduled it.';

--
-- Name: projects; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.projects (
    uuid uuid DEFAULT gen_random_uuid() NOT NULL,
    org_id uuid NOT NULL,
    name text NOT NULL,
    description text,
    settings jsonb DEFAULT '{}'::jsonb NOT NULL,
    created timestamp with time zone DEFAULT now() NOT NULL,
    modified timestamp with time zone DEFAULT now() NOT NULL,
    customer_id uuid NOT NULL,
    orphaned_at timestamp with time zone,
    CONSTRAINT projects_name_valid CHECK (((name ~ '^[A-Za-z0-9][A-Za-z0-9_-]*$'::text) AND (length(name) <= 255))),
    CONSTRAINT projects_settings_object CHECK ((jsonb_typeof(settings) = 'object'::text))
);

--
-- Name: TABLE projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.projects IS 'Projects of an org. Release 6.1 also hangs each one under exactly one customer.';

--
-- Name: COLUMN projects.org_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.projects.org_id IS 'The org the project belongs to; projects of another org are invisible to its users.';

--
-- Name: COLUMN projects.name; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.projects.name IS '1 to 255 characters: letters, digits, _ and -; starts with a letter or digit; unique within the org.';

--
-- Name: COLUMN projects.settings; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.projects.settings IS 'Free-form project settings (a JSON object).';

--
-- Name: COLUMN projects.modified; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.projects.modified IS 'Last change of name, description or settings (association changes are in audit_log, not here).';

--
-- Name: COLUMN projects.customer_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.projects.customer_id IS 'The customer this project belongs to: given when the project is created and final from release 6.4.';

--
-- Name: COLUMN projects.orphaned_at; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.projects.orphaned_at IS 'When the project lost its customer (NULL for a project never associated); the job waits customer_orphan_grace_seconds after it.';

--
-- Name: promoted_orgs; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.promoted_orgs (
    org_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    promotion_id bigint NOT NULL,
    created boolean NOT NULL,
    source_org uuid
);

--
-- Name: TABLE promoted_orgs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.promoted_orgs IS 'Release 6.4, while promoted: the customer each org stands for (one each way), written by config.promote_now only. Its customer and orgs cannot be deleted while promoted (triggers customers_promotion_kept_*, orgs_promotion_kept_*; no foreign keys, bench/ANALYSIS.md); the reversal empties it.';

--
-- Name: COLUMN promoted_orgs.org_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.promoted_orgs.org_id IS 'The org.';

--
-- Name: COLUMN promoted_orgs.customer_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.promoted_orgs.customer_id IS 'The customer it stands for.';

--
-- Name: COLUMN promoted_orgs.promotion_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.promoted_orgs.promotion_id IS 'The promotion that made the pair (the one in force: config.org_promotions.id).';

--
-- Name: COLUMN promoted_orgs.created; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.promoted_orgs.created IS 'Whether the promotion created the org (the reversal deletes it) or mapped the customer to the org it already stood for (a default customer).';

--
-- Name: COLUMN promoted_orgs.source_org; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.promoted_orgs.source_org IS 'The org the customer''s projects were in before (the promotion moved every one of them to org_id, the reversal returns the org''s projects there); NULL when the customer held none.';

--
-- Name: promotion_memberships; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.promotion_memberships (
    user_id uuid NOT NULL,
    org_id uuid NOT NULL,
    promotion_id bigint NOT NULL,
    role text NOT NULL,
    is_primary boolean NOT NULL
);

--
-- Name: TABLE promotion_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.promotion_memberships IS 'Release 6.4, while promoted: every membership as it was before the promotion (before-images: the reversal restores each user''s primary org from it; it empties it). Its orgs cannot be deleted while promoted (triggers orgs_promotion_kept_*).';

--
-- Name: COLUMN promotion_memberships.user_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.promotion_memberships.user_id IS 'The member (deleting the user forgets it).';

--
-- Name: COLUMN promotion_memberships.org_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.promotion_memberships.org_id IS 'The org it belonged to.';

--
-- Name: COLUMN promotion_memberships.promotion_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.promotion_memberships.promotion_id IS 'The promotion that recorded it (the one in force: config.org_promotions.id).';

--
-- Name: COLUMN promotion_memberships.role; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.promotion_memberships.role IS 'Its role there.';

--
-- Name: COLUMN promotion_memberships.is_primary; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.promotion_memberships.is_primary IS 'Whether it was the user''s primary org.';

--
-- Name: role_permissions; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.role_permissions (
    role text NOT NULL,
    permission text NOT NULL
);

--
-- Name: TABLE role_permissions; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.role_permissions IS 'Permissions granted to each role (checked by the HTTP service).';

--
-- Name: COLUMN role_permissions.role; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.role_permissions.role IS 'The role granted the permission.';

--
-- Name: COLUMN role_permissions.permission; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.role_permissions.permission IS 'One of: all_orgs, orgs.read, projects.read, projects.write, customers.read, customers.write, tunables.read, tunables.write, jobs.read, jobs.run, mode.switch, users.read, users.write, audit.read.';

--
-- Name: roles; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.roles (
    name text NOT NULL,
    description text NOT NULL
);

--
-- Name: TABLE roles; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.roles IS 'Roles a user can hold; what each allows is in role_permissions.';

--
-- Name: tokens; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.tokens (
    token_hash bytea NOT NULL,
    user_id uuid NOT NULL,
    created timestamp with time zone DEFAULT now() NOT NULL,
    expires timestamp with time zone NOT NULL,
    revoked timestamp with time zone
);

--
-- Name: TABLE tokens; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.tokens IS 'Opaque bearer tokens. Only the SHA-256 of a token is stored; the token itself is shown once, at login.';

--
-- Name: COLUMN tokens.token_hash; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.tokens.token_hash IS 'sha256 of the bearer token as sent by the client.';

--
-- Name: COLUMN tokens.user_id; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.tokens.user_id IS 'The user the token authenticates.';

--
-- Name: COLUMN tokens.expires; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.tokens.expires IS 'After this instant the token is refused (24 h after login).';

--
-- Name: COLUMN tokens.revoked; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.tokens.revoked IS 'Set by logout; a revoked token is refused.';

--
-- Name: tunables; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.tunables (
    name text NOT NULL,
    value jsonb NOT NULL,
    value_type text NOT NULL,
    minimum bigint,
    maximum bigint,
    description text NOT NULL,
    modified timestamp with time zone DEFAULT now() NOT NULL,
    modified_by text DEFAULT config.current_actor() NOT NULL,
    CONSTRAINT tunables_type_known CHECK ((value_type = ANY (ARRAY['boolean'::text, 'integer'::text])))
);

--
-- Name: TABLE tunables; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.tunables IS 'Cluster settings. Part of release 6.0 so they can be set before an upgrade and survive a downgrade.';

--
-- Name: COLUMN tunables.value; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.tunables.value IS 'The current value, as JSON (true/false, or an integer).';

--
-- Name: COLUMN tunables.value_type; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.tunables.value_type IS 'JSON type the value must have: boolean or integer (checked by trigger tunables_validate).';

--
-- Name: COLUMN tunables.minimum; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.tunables.minimum IS 'Smallest allowed value for integer tunables.';

--
-- Name: COLUMN tunables.maximum; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.tunables.maximum IS 'Largest allowed value for integer tunables (never above 2147483647, what the job can use).';

--
-- Name: COLUMN tunables.modified; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.tunables.modified IS 'When the value last changed (rule 6 compares it with when a project became an orphan).';

--
-- Name: COLUMN tunables.modified_by; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.tunables.modified_by IS 'Who last changed the value (application user or database role).';

--
-- Name: users; Type: TABLE; Schema: config; Owner: -
--

CREATE TABLE config.users (
    uuid uuid DEFAULT gen_random_uuid() NOT NULL,
    email text NOT NULL,
    password_hash text NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    created timestamp with time zone DEFAULT now() NOT NULL,
    modified timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT users_email_valid CHECK (((email ~ '^[^@\s]+@[^@\s]+$'::text) AND (length(email) <= 254)))
);

--
-- Name: TABLE users; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TABLE config.users IS 'People who call the API. From release 6.4 their orgs and roles are in org_memberships.';

--
-- Name: COLUMN users.email; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.users.email IS 'Login name; unique regardless of case.';

--
-- Name: COLUMN users.password_hash; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.users.password_hash IS 'argon2id hash (PHC string) written by the service; never the password.';

--
-- Name: COLUMN users.is_active; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON COLUMN config.users.is_active IS 'A deactivated user cannot log in and its tokens stop working.';

--
-- Name: login_failures; Type: TABLE; Schema: service_state; Owner: -
--

CREATE TABLE service_state.login_failures (
    scope text NOT NULL,
    key text NOT NULL,
    attempts timestamp with time zone[] NOT NULL,
    expires timestamp with time zone NOT NULL,
    CONSTRAINT login_failures_scope_known CHECK ((scope = ANY (ARRAY['account'::text, 'address'::text])))
);

--
-- Name: TABLE login_failures; Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON TABLE service_state.login_failures IS 'The failed-login throttle: recent login attempts per account and per client address. A login counts as an attempt before its password is checked (throttle.attempt); a success clears its account and takes its own attempt back. Rows past expires are pruned a few at a time by the next attempt. To lift a throttle: DELETE the row.';

--
-- Name: COLUMN login_failures.scope; Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON COLUMN service_state.login_failures.scope IS 'account (key: the lower-cased email given at login, whether or not such a user exists) or address (key: the client address the service saw).';

--
-- Name: COLUMN login_failures.key; Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON COLUMN service_state.login_failures.key IS 'The lower-cased email, or the client address (see scope).';

--
-- Name: COLUMN login_failures.attempts; Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON COLUMN service_state.login_failures.attempts IS 'When the recent attempts were made, oldest first: at most the limit of the scope (5 per account, 20 per address in 60 s, service/auth.py).';

--
-- Name: COLUMN login_failures.expires; Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON COLUMN service_state.login_failures.expires IS 'When the newest attempt leaves the window: from then on the row throttles nothing and may be pruned.';

--
-- Name: secret; Type: TABLE; Schema: service_state; Owner: -
--

CREATE TABLE service_state.secret (
    only_row boolean DEFAULT true NOT NULL,
    key text NOT NULL,
    CONSTRAINT secret_only_row_check CHECK (only_row)
);

--
-- Name: TABLE secret; Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON TABLE service_state.secret IS 'The key that signs the request user of a session (hierarchy.user_key, sql/privileges.sql); readable by the owner only. Replacing it signs every session out.';

--
-- Name: COLUMN secret.only_row; Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON COLUMN service_state.secret.only_row IS 'Always true: one row.';

--
-- Name: COLUMN secret.key; Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON COLUMN service_state.secret.key IS 'Random, made once (gen_random_uuid twice: 244 random bits).';

--
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

--
-- Name: customer_counts customer_counts_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.customer_counts
    ADD CONSTRAINT customer_counts_pkey PRIMARY KEY (id);

--
-- Name: customers customers_name_unique; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.customers
    ADD CONSTRAINT customers_name_unique UNIQUE (name);

--
-- Name: customers customers_one_default_per_org; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.customers
    ADD CONSTRAINT customers_one_default_per_org UNIQUE (default_for_org);

--
-- Name: customers customers_one_per_project; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.customers
    ADD CONSTRAINT customers_one_per_project UNIQUE (created_for_project);

--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (uuid);

--
-- Name: customers_unsettled customers_unsettled_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.customers_unsettled
    ADD CONSTRAINT customers_unsettled_pkey PRIMARY KEY (customer_id);

--
-- Name: job_runs job_runs_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.job_runs
    ADD CONSTRAINT job_runs_pkey PRIMARY KEY (id);

--
-- Name: org_memberships org_memberships_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.org_memberships
    ADD CONSTRAINT org_memberships_pkey PRIMARY KEY (user_id, org_id);

--
-- Name: org_promotions org_promotions_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.org_promotions
    ADD CONSTRAINT org_promotions_pkey PRIMARY KEY (id);

--
-- Name: orgs orgs_name_key; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.orgs
    ADD CONSTRAINT orgs_name_key UNIQUE (name);

--
-- Name: orgs orgs_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.orgs
    ADD CONSTRAINT orgs_pkey PRIMARY KEY (uuid);

--
-- Name: parked_cron_jobs parked_cron_jobs_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.parked_cron_jobs
    ADD CONSTRAINT parked_cron_jobs_pkey PRIMARY KEY (jobname);

--
-- Name: projects projects_org_name_unique; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.projects
    ADD CONSTRAINT projects_org_name_unique UNIQUE (org_id, name);

--
-- Name: projects projects_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.projects
    ADD CONSTRAINT projects_pkey PRIMARY KEY (uuid);

--
-- Name: promoted_orgs promoted_orgs_customer_id_key; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.promoted_orgs
    ADD CONSTRAINT promoted_orgs_customer_id_key UNIQUE (customer_id);

--
-- Name: promoted_orgs promoted_orgs_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.promoted_orgs
    ADD CONSTRAINT promoted_orgs_pkey PRIMARY KEY (org_id);

--
-- Name: promotion_memberships promotion_memberships_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.promotion_memberships
    ADD CONSTRAINT promotion_memberships_pkey PRIMARY KEY (user_id, org_id);

--
-- Name: role_permissions role_permissions_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.role_permissions
    ADD CONSTRAINT role_permissions_pkey PRIMARY KEY (role, permission);

--
-- Name: roles roles_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.roles
    ADD CONSTRAINT roles_pkey PRIMARY KEY (name);

--
-- Name: tokens tokens_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.tokens
    ADD CONSTRAINT tokens_pkey PRIMARY KEY (token_hash);

--
-- Name: tunables tunables_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.tunables
    ADD CONSTRAINT tunables_pkey PRIMARY KEY (name);

--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (uuid);

--
-- Name: login_failures login_failures_pkey; Type: CONSTRAINT; Schema: service_state; Owner: -
--

ALTER TABLE ONLY service_state.login_failures
    ADD CONSTRAINT login_failures_pkey PRIMARY KEY (scope, key);

--
-- Name: secret secret_pkey; Type: CONSTRAINT; Schema: service_state; Owner: -
--

ALTER TABLE ONLY service_state.secret
    ADD CONSTRAINT secret_pkey PRIMARY KEY (only_row);

--
-- Name: audit_log_at_idx; Type: INDEX; Schema: config; Owner: -
--

CREATE INDEX audit_log_at_idx ON config.audit_log USING brin (at);

--
-- Name: INDEX audit_log_at_idx; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON INDEX config.audit_log_at_idx IS 'Time ranges of the audit log (BRIN: rows are appended in time order).';

--
-- Name: audit_log_object_idx; Type: INDEX; Schema: config; Owner: -
--

CREATE INDEX audit_log_object_idx ON config.audit_log USING btree (object_type, object_id, at);

--
-- Name: job_runs_started_idx; Type: INDEX; Schema: config; Owner: -
--

CREATE INDEX job_runs_started_idx ON config.job_runs USING btree (started);

--
-- Name: org_memberships_one_primary; Type: INDEX; Schema: config; Owner: -
--

CREATE UNIQUE INDEX org_memberships_one_primary ON config.org_memberships USING btree (user_id) WHERE is_primary;

--
-- Name: INDEX org_memberships_one_primary; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON INDEX config.org_memberships_one_primary IS 'At most one primary org per user.';

--
-- Name: org_memberships_org_idx; Type: INDEX; Schema: config; Owner: -
--

CREATE INDEX org_memberships_org_idx ON config.org_memberships USING btree (org_id);

--
-- Name: INDEX org_memberships_org_idx; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON INDEX config.org_memberships_org_idx IS 'The members of an org.';

--
-- Name: org_promotions_one_active; Type: INDEX; Schema: config; Owner: -
--

CREATE UNIQUE INDEX org_promotions_one_active ON config.org_promotions USING btree ((true)) WHERE (demoted_at IS NULL);

--
-- Name: INDEX org_promotions_one_active; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON INDEX config.org_promotions_one_active IS 'At most one promotion in force.';

--
-- Name: projects_customer_idx; Type: INDEX; Schema: config; Owner: -
--

CREATE INDEX projects_customer_idx ON config.projects USING btree (customer_id);

--
-- Name: projects_orphans_idx; Type: INDEX; Schema: config; Owner: -
--

CREATE INDEX projects_orphans_idx ON config.projects USING btree (org_id) WHERE (customer_id IS NULL);

--
-- Name: INDEX projects_orphans_idx; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON INDEX config.projects_orphans_idx IS 'Orphans only: keeps an idle job run and the orphan audit cheap whatever the number of projects.';

--
-- Name: promoted_orgs_source_idx; Type: INDEX; Schema: config; Owner: -
--

CREATE INDEX promoted_orgs_source_idx ON config.promoted_orgs USING btree (source_org);

--
-- Name: INDEX promoted_orgs_source_idx; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON INDEX config.promoted_orgs_source_idx IS 'The orgs that received an org''s projects (and the check of orgs_promotion_kept_* when an org is deleted).';

--
-- Name: promotion_memberships_org_idx; Type: INDEX; Schema: config; Owner: -
--

CREATE INDEX promotion_memberships_org_idx ON config.promotion_memberships USING btree (org_id);

--
-- Name: INDEX promotion_memberships_org_idx; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON INDEX config.promotion_memberships_org_idx IS 'The check of orgs_promotion_kept_* when an org is deleted.';

--
-- Name: tokens_expires_idx; Type: INDEX; Schema: config; Owner: -
--

CREATE INDEX tokens_expires_idx ON config.tokens USING btree (expires);

--
-- Name: tokens_user_idx; Type: INDEX; Schema: config; Owner: -
--

CREATE INDEX tokens_user_idx ON config.tokens USING btree (user_id);

--
-- Name: users_email_unique; Type: INDEX; Schema: config; Owner: -
--

CREATE UNIQUE INDEX users_email_unique ON config.users USING btree (lower(email));

--
-- Name: login_failures_expires_idx; Type: INDEX; Schema: service_state; Owner: -
--

CREATE INDEX login_failures_expires_idx ON service_state.login_failures USING btree (expires);

--
-- Name: INDEX login_failures_expires_idx; Type: COMMENT; Schema: service_state; Owner: -
--

COMMENT ON INDEX service_state.login_failures_expires_idx IS 'Finds expired rows for pruning.';

--
-- Name: customers customers_audit_delete; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_audit_delete AFTER DELETE ON config.customers REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION config.count_customers();

--
-- Name: TRIGGER customers_audit_delete ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_audit_delete ON config.customers IS 'Rule 10: audit_log rows for deleted customers; counts them out of customer_counts.';

--
-- Name: customers customers_audit_insert; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_audit_insert AFTER INSERT ON config.customers REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.count_customers();

--
-- Name: TRIGGER customers_audit_insert ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_audit_insert ON config.customers IS 'Rule 10: audit_log rows for new customers; counts them in customer_counts.';

--
-- Name: customers customers_audit_update; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_audit_update AFTER UPDATE ON config.customers REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('modified');

--
-- Name: TRIGGER customers_audit_update ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_audit_update ON config.customers IS 'Rule 10: audit_log rows for changed customers.';

--
-- Name: customers customers_count_truncate; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_count_truncate AFTER TRUNCATE ON config.customers FOR EACH STATEMENT EXECUTE FUNCTION config.count_customers();

--
-- Name: TRIGGER customers_count_truncate ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_count_truncate ON config.customers IS 'Empties customer_counts with the customers.';

--
-- Name: customers customers_count_update; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_count_update AFTER UPDATE ON config.customers REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.count_customers();

--
-- Name: TRIGGER customers_count_update ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_count_update ON config.customers IS 'Moves re-labelled customers between origins in customer_counts.';

--
-- Name: customers customers_delete_lock; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_delete_lock BEFORE DELETE ON config.customers FOR EACH STATEMENT EXECUTE FUNCTION config.customers_lock_projects();

--
-- Name: TRIGGER customers_delete_lock ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_delete_lock ON config.customers IS 'Deleting customers first waits for (and then holds off) changes to projects: the lock order''s one exception made safe.';

--
-- Name: customers customers_guard_name; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_guard_name BEFORE UPDATE ON config.customers FOR EACH ROW EXECUTE FUNCTION config.customers_guard_name();

--
-- Name: TRIGGER customers_guard_name ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_guard_name ON config.customers IS 'Spaces to dashes; refuses renaming a single-project customer away from its project''s name.';

--
-- Name: customers customers_guard_new_name; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_guard_new_name BEFORE INSERT ON config.customers FOR EACH ROW WHEN ((strpos(new.name, ' '::text) > 0)) EXECUTE FUNCTION config.customers_guard_name();

--
-- Name: TRIGGER customers_guard_new_name ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_guard_new_name ON config.customers IS 'Spaces to dashes in the name of a new customer.';

--
-- Name: customers customers_keep_projects; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_keep_projects BEFORE DELETE ON config.customers FOR EACH ROW EXECUTE FUNCTION config.refuse_deleting_held_customer();

ALTER TABLE config.customers ENABLE ALWAYS TRIGGER customers_keep_projects;

--
-- Name: TRIGGER customers_keep_projects ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_keep_projects ON config.customers IS 'Release 6.4: a customer holding projects cannot be deleted (the message says how many).';

--
-- Name: customers customers_promotion_kept_delete; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_promotion_kept_delete AFTER DELETE ON config.customers REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION config.refuse_losing_promoted();

ALTER TABLE config.customers ENABLE ALWAYS TRIGGER customers_promotion_kept_delete;

--
-- Name: TRIGGER customers_promotion_kept_delete ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_promotion_kept_delete ON config.customers IS 'Release 6.4, while promoted: a customer an org stands for cannot be deleted (SQLSTATE 23503; one check per statement, fires in replica mode too).';

--
-- Name: customers customers_promotion_kept_update; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER customers_promotion_kept_update AFTER UPDATE ON config.customers REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.refuse_losing_promoted();

ALTER TABLE config.customers ENABLE ALWAYS TRIGGER customers_promotion_kept_update;

--
-- Name: TRIGGER customers_promotion_kept_update ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER customers_promotion_kept_update ON config.customers IS 'Release 6.4, while promoted: nor can its uuid change (SQLSTATE 23503).';

--
-- Name: org_memberships org_memberships_audit_delete; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER org_memberships_audit_delete AFTER DELETE ON config.org_memberships REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_memberships();

--
-- Name: TRIGGER org_memberships_audit_delete ON org_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER org_memberships_audit_delete ON config.org_memberships IS 'audit_log rows for removed memberships.';

--
-- Name: org_memberships org_memberships_audit_insert; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER org_memberships_audit_insert AFTER INSERT ON config.org_memberships REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_memberships();

--
-- Name: TRIGGER org_memberships_audit_insert ON org_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER org_memberships_audit_insert ON config.org_memberships IS 'audit_log rows for added memberships.';

--
-- Name: org_memberships org_memberships_audit_update; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER org_memberships_audit_update AFTER UPDATE ON config.org_memberships REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_memberships();

--
-- Name: TRIGGER org_memberships_audit_update ON org_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER org_memberships_audit_update ON config.org_memberships IS 'audit_log rows for changed roles and primary orgs.';

--
-- Name: org_memberships org_memberships_checked; Type: TRIGGER; Schema: config; Owner: -
--

CREATE CONSTRAINT TRIGGER org_memberships_checked AFTER INSERT OR UPDATE ON config.org_memberships DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION config.check_user_memberships();

--
-- Name: TRIGGER org_memberships_checked ON org_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER org_memberships_checked ON config.org_memberships IS 'At commit, for a membership added or changed: the member still has exactly one primary org, and a super admin one membership.';

--
-- Name: org_memberships org_memberships_checked_delete; Type: TRIGGER; Schema: config; Owner: -
--

CREATE CONSTRAINT TRIGGER org_memberships_checked_delete AFTER DELETE ON config.org_memberships DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (old.is_primary) EXECUTE FUNCTION config.check_user_memberships();

--
-- Name: TRIGGER org_memberships_checked_delete ON org_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER org_memberships_checked_delete ON config.org_memberships IS 'At commit, for a primary membership deleted: the member still has exactly one primary org (a non-primary one deleted cannot break either rule, so it is not queued).';

--
-- Name: org_memberships org_memberships_guard_write; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER org_memberships_guard_write BEFORE INSERT OR DELETE OR UPDATE ON config.org_memberships FOR EACH STATEMENT EXECUTE FUNCTION service_state.guard_write('users.write');

--
-- Name: TRIGGER org_memberships_guard_write ON org_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER org_memberships_guard_write ON config.org_memberships IS 'The runtime role writes memberships only for a signed request user with users.write (service_state.guard_write; sql/privileges.sql).';

--
-- Name: org_memberships org_memberships_touch; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER org_memberships_touch BEFORE UPDATE OF role, is_primary ON config.org_memberships FOR EACH ROW EXECUTE FUNCTION config.touch_modified();

--
-- Name: TRIGGER org_memberships_touch ON org_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER org_memberships_touch ON config.org_memberships IS 'Bumps modified when a membership changes.';

--
-- Name: orgs orgs_audit_delete; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER orgs_audit_delete AFTER DELETE ON config.orgs REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes();

--
-- Name: TRIGGER orgs_audit_delete ON orgs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER orgs_audit_delete ON config.orgs IS 'audit_log rows for deleted orgs.';

--
-- Name: orgs orgs_audit_insert; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER orgs_audit_insert AFTER INSERT ON config.orgs REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes();

--
-- Name: TRIGGER orgs_audit_insert ON orgs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER orgs_audit_insert ON config.orgs IS 'audit_log rows for new orgs.';

--
-- Name: orgs orgs_audit_update; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER orgs_audit_update AFTER UPDATE ON config.orgs REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('modified');

--
-- Name: TRIGGER orgs_audit_update ON orgs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER orgs_audit_update ON config.orgs IS 'audit_log rows for changed orgs.';

--
-- Name: orgs orgs_promotion_kept_delete; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER orgs_promotion_kept_delete AFTER DELETE ON config.orgs REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION config.refuse_losing_promoted();

ALTER TABLE config.orgs ENABLE ALWAYS TRIGGER orgs_promotion_kept_delete;

--
-- Name: TRIGGER orgs_promotion_kept_delete ON orgs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER orgs_promotion_kept_delete ON config.orgs IS 'Release 6.4, while promoted: an org the promotion in force maps, returns projects to or recorded a membership in cannot be deleted (SQLSTATE 23503; one check per statement, fires in replica mode too).';

--
-- Name: orgs orgs_promotion_kept_update; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER orgs_promotion_kept_update AFTER UPDATE ON config.orgs REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.refuse_losing_promoted();

ALTER TABLE config.orgs ENABLE ALWAYS TRIGGER orgs_promotion_kept_update;

--
-- Name: TRIGGER orgs_promotion_kept_update ON orgs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER orgs_promotion_kept_update ON config.orgs IS 'Release 6.4, while promoted: nor can its uuid change (SQLSTATE 23503).';

--
-- Name: orgs orgs_touch; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER orgs_touch BEFORE UPDATE OF name ON config.orgs FOR EACH ROW EXECUTE FUNCTION config.touch_modified();

--
-- Name: TRIGGER orgs_touch ON orgs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER orgs_touch ON config.orgs IS 'Bumps modified when the name changes.';

--
-- Name: projects projects_assign_customer; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_assign_customer BEFORE INSERT ON config.projects FOR EACH ROW EXECUTE FUNCTION config.assign_new_project();

ALTER TABLE config.projects DISABLE TRIGGER projects_assign_customer;

--
-- Name: TRIGGER projects_assign_customer ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_assign_customer ON config.projects IS 'Rule 5: associates every new project (INSERT or COPY) in the same transaction.';

--
-- Name: projects projects_audit_delete; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_audit_delete AFTER DELETE ON config.projects REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes();

--
-- Name: TRIGGER projects_audit_delete ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_audit_delete ON config.projects IS 'audit_log rows for deleted projects.';

--
-- Name: projects projects_audit_insert; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_audit_insert AFTER INSERT ON config.projects REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes();

--
-- Name: TRIGGER projects_audit_insert ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_audit_insert ON config.projects IS 'audit_log rows for new projects (including the customer they were given).';

--
-- Name: projects projects_audit_update; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_audit_update AFTER UPDATE ON config.projects REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('modified');

--
-- Name: TRIGGER projects_audit_update ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_audit_update ON config.projects IS 'audit_log rows for changed projects, including association changes (changed contains customer_id).';

--
-- Name: projects projects_create_own_customers; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_create_own_customers AFTER INSERT ON config.projects REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.create_own_customers();

ALTER TABLE config.projects DISABLE TRIGGER projects_create_own_customers;

--
-- Name: TRIGGER projects_create_own_customers ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_create_own_customers ON config.projects IS 'Rule 5: creates the new projects'' own customers (system projects, per-project mode) in one statement.';

--
-- Name: projects projects_customer_final; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_customer_final BEFORE UPDATE OF customer_id ON config.projects FOR EACH ROW WHEN ((new.customer_id IS DISTINCT FROM old.customer_id)) EXECUTE FUNCTION config.refuse_customer_change();

ALTER TABLE config.projects ENABLE ALWAYS TRIGGER projects_customer_final;

--
-- Name: TRIGGER projects_customer_final ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_customer_final ON config.projects IS 'Release 6.4: a project''s customer cannot be changed (fires in replica mode too: bulk loads included).';

--
-- Name: projects projects_defer_customer_check; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_defer_customer_check BEFORE INSERT ON config.projects FOR EACH STATEMENT EXECUTE FUNCTION config.defer_customer_check();

ALTER TABLE config.projects DISABLE TRIGGER projects_defer_customer_check;

--
-- Name: TRIGGER projects_defer_customer_check ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_defer_customer_check ON config.projects IS 'Rule 5: the foreign-key check of new projects waits for their customers (end of the same statement).';

--
-- Name: projects projects_org_is_customer_org; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_org_is_customer_org BEFORE INSERT ON config.projects FOR EACH ROW EXECUTE FUNCTION config.refuse_project_outside_customer_org();

ALTER TABLE config.projects ENABLE ALWAYS TRIGGER projects_org_is_customer_org;

--
-- Name: TRIGGER projects_org_is_customer_org ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_org_is_customer_org ON config.projects IS 'Release 6.4, while promoted: a project created is in the org its customer stands for (fires in replica mode too).';

--
-- Name: projects projects_org_is_customer_org_moves; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_org_is_customer_org_moves AFTER UPDATE ON config.projects REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.refuse_project_outside_customer_org();

ALTER TABLE config.projects ENABLE ALWAYS TRIGGER projects_org_is_customer_org_moves;

--
-- Name: TRIGGER projects_org_is_customer_org_moves ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_org_is_customer_org_moves ON config.projects IS 'Release 6.4, while promoted: so is every project an UPDATE writes, checked once per statement (a promotion moves 100,000 in one; fires in replica mode too).';

--
-- Name: projects projects_settle_delete; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_settle_delete AFTER DELETE ON config.projects REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION config.projects_settle();

--
-- Name: TRIGGER projects_settle_delete ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_settle_delete ON config.projects IS 'After project deletions: empty auto-created customers are deleted, rule 4 names applied.';

--
-- Name: projects projects_settle_insert; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_settle_insert AFTER INSERT ON config.projects REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.projects_settle();

--
-- Name: TRIGGER projects_settle_insert ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_settle_insert ON config.projects IS 'Rule 4 after inserts: a customer that now has one project takes its name.';

--
-- Name: projects projects_settle_update; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_settle_update AFTER UPDATE ON config.projects REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.projects_settle();

--
-- Name: TRIGGER projects_settle_update ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_settle_update ON config.projects IS 'Rule 4 after moves and renames; empty auto-created customers are deleted.';

--
-- Name: projects projects_touch; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_touch BEFORE UPDATE OF name, description, settings ON config.projects FOR EACH ROW EXECUTE FUNCTION config.touch_modified();

--
-- Name: TRIGGER projects_touch ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_touch ON config.projects IS 'Bumps modified when name, description or settings change (not on association changes).';

--
-- Name: projects projects_track_orphans; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER projects_track_orphans BEFORE UPDATE OF customer_id ON config.projects FOR EACH ROW WHEN ((((new.customer_id IS NULL) AND (old.customer_id IS NOT NULL)) OR ((new.customer_id IS NOT NULL) AND (new.orphaned_at IS NOT NULL)))) EXECUTE FUNCTION config.track_orphans();

ALTER TABLE config.projects DISABLE TRIGGER projects_track_orphans;

--
-- Name: TRIGGER projects_track_orphans ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER projects_track_orphans ON config.projects IS 'Rule 6: records when a project lost its customer.';

--
-- Name: tokens tokens_revoke_only; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER tokens_revoke_only BEFORE UPDATE ON config.tokens FOR EACH ROW EXECUTE FUNCTION service_state.tokens_revoke_only();

--
-- Name: TRIGGER tokens_revoke_only ON tokens; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER tokens_revoke_only ON config.tokens IS 'Logout only sets revoked (service_state.tokens_revoke_only; sql/privileges.sql).';

--
-- Name: tunables tunables_audit; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER tunables_audit AFTER UPDATE ON config.tunables FOR EACH ROW EXECUTE FUNCTION config.audit_tunable();

--
-- Name: TRIGGER tunables_audit ON tunables; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER tunables_audit ON config.tunables IS 'Writes tunable value changes to audit_log.';

--
-- Name: tunables tunables_guard_write; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER tunables_guard_write BEFORE INSERT OR DELETE OR UPDATE ON config.tunables FOR EACH STATEMENT EXECUTE FUNCTION service_state.guard_write('tunables.write');

--
-- Name: TRIGGER tunables_guard_write ON tunables; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER tunables_guard_write ON config.tunables IS 'The runtime role writes tunables only for a signed request user with tunables.write (service_state.guard_write; sql/privileges.sql).';

--
-- Name: tunables tunables_mode_changed; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER tunables_mode_changed AFTER UPDATE ON config.tunables FOR EACH ROW WHEN (((new.name = config.mode_tunable()) AND (new.value IS DISTINCT FROM old.value))) EXECUTE FUNCTION config.on_mode_changed();

ALTER TABLE config.tunables DISABLE TRIGGER tunables_mode_changed;

--
-- Name: TRIGGER tunables_mode_changed ON tunables; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER tunables_mode_changed ON config.tunables IS 'Rule 7: changing turbine_api_feature_migrate_projects_to_orgs runs the job in the same transaction.';

--
-- Name: tunables tunables_validate; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER tunables_validate BEFORE INSERT OR UPDATE ON config.tunables FOR EACH ROW EXECUTE FUNCTION config.tunables_validate();

--
-- Name: TRIGGER tunables_validate ON tunables; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER tunables_validate ON config.tunables IS 'Type and minimum checks; modified/modified_by bookkeeping.';

--
-- Name: users users_audit_delete; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER users_audit_delete AFTER DELETE ON config.users REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('password_hash');

--
-- Name: TRIGGER users_audit_delete ON users; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER users_audit_delete ON config.users IS 'audit_log rows for deleted users (never the password hash).';

--
-- Name: users users_audit_insert; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER users_audit_insert AFTER INSERT ON config.users REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('password_hash');

--
-- Name: TRIGGER users_audit_insert ON users; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER users_audit_insert ON config.users IS 'audit_log rows for new users (never the password hash).';

--
-- Name: users users_audit_update; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER users_audit_update AFTER UPDATE ON config.users REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('password_hash', 'modified');

--
-- Name: TRIGGER users_audit_update ON users; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER users_audit_update ON config.users IS 'audit_log rows for changed users (never the password hash).';

--
-- Name: users users_guard_write; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER users_guard_write BEFORE INSERT OR DELETE OR UPDATE ON config.users FOR EACH STATEMENT EXECUTE FUNCTION service_state.guard_write('users.write');

--
-- Name: TRIGGER users_guard_write ON users; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER users_guard_write ON config.users IS 'The runtime role writes users only for a signed request user with users.write (service_state.guard_write; sql/privileges.sql).';

--
-- Name: users users_have_primary_org; Type: TRIGGER; Schema: config; Owner: -
--

CREATE CONSTRAINT TRIGGER users_have_primary_org AFTER INSERT ON config.users DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION config.check_user_memberships();

--
-- Name: TRIGGER users_have_primary_org ON users; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER users_have_primary_org ON config.users IS 'At commit: a new user has exactly one primary org (create it with its membership, in one transaction).';

--
-- Name: users users_touch; Type: TRIGGER; Schema: config; Owner: -
--

CREATE TRIGGER users_touch BEFORE UPDATE OF email, password_hash, is_active ON config.users FOR EACH ROW EXECUTE FUNCTION config.touch_modified();

--
-- Name: TRIGGER users_touch ON users; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON TRIGGER users_touch ON config.users IS 'Bumps modified when a user changes.';

--
-- Name: customers customers_created_by_fkey; Type: FK CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.customers
    ADD CONSTRAINT customers_created_by_fkey FOREIGN KEY (created_by) REFERENCES config.users(uuid) ON DELETE SET NULL;

--
-- Name: customers customers_default_for_org_fkey; Type: FK CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.customers
    ADD CONSTRAINT customers_default_for_org_fkey FOREIGN KEY (default_for_org) REFERENCES config.orgs(uuid) ON DELETE CASCADE;

--
-- Name: org_memberships org_memberships_org_id_fkey; Type: FK CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.org_memberships
    ADD CONSTRAINT org_memberships_org_id_fkey FOREIGN KEY (org_id) REFERENCES config.orgs(uuid) ON DELETE RESTRICT;

--
-- Name: org_memberships org_memberships_role_fkey; Type: FK CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.org_memberships
    ADD CONSTRAINT org_memberships_role_fkey FOREIGN KEY (role) REFERENCES config.roles(name);

--
-- Name: org_memberships org_memberships_user_id_fkey; Type: FK CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.org_memberships
    ADD CONSTRAINT org_memberships_user_id_fkey FOREIGN KEY (user_id) REFERENCES config.users(uuid) ON DELETE CASCADE;

--
-- Name: projects projects_customer_id_fkey; Type: FK CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.projects
    ADD CONSTRAINT projects_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES config.customers(uuid) ON DELETE RESTRICT;

--
-- Name: projects projects_org_id_fkey; Type: FK CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.projects
    ADD CONSTRAINT projects_org_id_fkey FOREIGN KEY (org_id) REFERENCES config.orgs(uuid) ON DELETE RESTRICT;

--
-- Name: promotion_memberships promotion_memberships_user_id_fkey; Type: FK CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.promotion_memberships
    ADD CONSTRAINT promotion_memberships_user_id_fkey FOREIGN KEY (user_id) REFERENCES config.users(uuid) ON DELETE CASCADE;

--
-- Name: role_permissions role_permissions_role_fkey; Type: FK CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.role_permissions
    ADD CONSTRAINT role_permissions_role_fkey FOREIGN KEY (role) REFERENCES config.roles(name) ON DELETE CASCADE;

--
-- Name: tokens tokens_user_id_fkey; Type: FK CONSTRAINT; Schema: config; Owner: -
--

ALTER TABLE ONLY config.tokens
    ADD CONSTRAINT tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES config.users(uuid) ON DELETE CASCADE;

--
-- Name: audit_log; Type: ROW SECURITY; Schema: config; Owner: -
--

ALTER TABLE config.audit_log ENABLE ROW LEVEL SECURITY;

--
-- Name: audit_log audit_of_request_orgs; Type: POLICY; Schema: config; Owner: -
--

CREATE POLICY audit_of_request_orgs ON config.audit_log FOR SELECT TO hierarchy_app USING ((( SELECT service_state.request_sees_all() AS request_sees_all) OR ((( SELECT service_state.request_user() AS request_user) IS NOT NULL) AND ((object_type = 'tunables'::text) OR ((object_type = 'orgs'::text) AND (object_id = ANY (( SELECT service_state.request_orgs() AS request_orgs)::uuid[]))) OR ((object_type = ANY (ARRAY['projects'::text, 'users'::text, 'org_memberships'::text])) AND ((COALESCE((after ->> 'org_id'::text), (before ->> 'org_id'::text)) = ANY ((( SELECT service_state.request_orgs() AS request_orgs))::text[])) OR ((object_type = 'projects'::text) AND (EXISTS ( SELECT 1
   FROM config.projects p
  WHERE (p.uuid = audit_log.object_id)))) OR ((object_type = 'users'::text) AND service_state.user_in_orgs(object_id, ( SELECT service_state.request_orgs() AS request_orgs))))) OR ((object_type = 'customers'::text) AND ((COALESCE((after ->> 'created_by'::text), (before ->> 'created_by'::text)) = (( SELECT service_state.request_user() AS request_user))::text) OR service_state.customer_has_visible_project(object_id)))))));

--
-- Name: POLICY audit_of_request_orgs ON audit_log; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON POLICY audit_of_request_orgs ON config.audit_log IS 'The runtime role reads the audit rows of objects the request user may see (by object, as sql/queries/audit.sql says: tunables, its orgs, the projects, users and memberships of its orgs, the customers it created or whose projects it sees; all for a super admin). Nobody but the owner writes it directly: the audit triggers run as the owner.';

--
-- Name: audit_log audit_reports; Type: POLICY; Schema: config; Owner: -
--

CREATE POLICY audit_reports ON config.audit_log FOR SELECT TO hierarchy_reader USING (true);

--
-- Name: POLICY audit_reports ON audit_log; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON POLICY audit_reports ON config.audit_log IS 'Reports read the whole audit log.';

--
-- Name: customers; Type: ROW SECURITY; Schema: config; Owner: -
--

ALTER TABLE config.customers ENABLE ROW LEVEL SECURITY;

--
-- Name: customers customers_of_request_orgs; Type: POLICY; Schema: config; Owner: -
--

CREATE POLICY customers_of_request_orgs ON config.customers TO hierarchy_app USING ((( SELECT service_state.request_sees_all() AS request_sees_all) OR (created_by = ( SELECT service_state.request_user() AS request_user)) OR (EXISTS ( SELECT 1
   FROM config.projects p
  WHERE ((p.customer_id = customers.uuid) AND (p.org_id = ANY (( SELECT service_state.request_orgs() AS request_orgs)::uuid[]))))))) WITH CHECK ((( SELECT service_state.request_user() AS request_user) IS NOT NULL));

--
-- Name: POLICY customers_of_request_orgs ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON POLICY customers_of_request_orgs ON config.customers IS 'The runtime role sees the customers the request user created or that hold a project of its orgs (every one for a super admin), as the named queries'' "customer visible"; it may write only with a signed request user (the statements check the rest).';

--
-- Name: customers customers_reports; Type: POLICY; Schema: config; Owner: -
--

CREATE POLICY customers_reports ON config.customers FOR SELECT TO hierarchy_reader USING (true);

--
-- Name: POLICY customers_reports ON customers; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON POLICY customers_reports ON config.customers IS 'Reports read every customer.';

--
-- Name: org_memberships memberships_of_request_orgs; Type: POLICY; Schema: config; Owner: -
--

CREATE POLICY memberships_of_request_orgs ON config.org_memberships TO hierarchy_app USING ((( SELECT service_state.request_sees_all() AS request_sees_all) OR (user_id = ( SELECT service_state.request_user() AS request_user)) OR (org_id = ANY (( SELECT service_state.request_orgs() AS request_orgs)::uuid[])))) WITH CHECK ((( SELECT service_state.request_sees_all() AS request_sees_all) OR (org_id = ANY (( SELECT service_state.request_orgs() AS request_orgs)::uuid[]))));

--
-- Name: POLICY memberships_of_request_orgs ON org_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON POLICY memberships_of_request_orgs ON config.org_memberships IS 'The runtime role sees the request user''s own memberships and those of its orgs (all for a super admin).';

--
-- Name: org_memberships memberships_reports; Type: POLICY; Schema: config; Owner: -
--

CREATE POLICY memberships_reports ON config.org_memberships FOR SELECT TO hierarchy_reader USING (true);

--
-- Name: POLICY memberships_reports ON org_memberships; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON POLICY memberships_reports ON config.org_memberships IS 'Reports read every membership.';

--
-- Name: org_memberships; Type: ROW SECURITY; Schema: config; Owner: -
--

ALTER TABLE config.org_memberships ENABLE ROW LEVEL SECURITY;

--
-- Name: projects; Type: ROW SECURITY; Schema: config; Owner: -
--

ALTER TABLE config.projects ENABLE ROW LEVEL SECURITY;

--
-- Name: projects projects_of_request_orgs; Type: POLICY; Schema: config; Owner: -
--

CREATE POLICY projects_of_request_orgs ON config.projects TO hierarchy_app USING ((( SELECT service_state.request_sees_all() AS request_sees_all) OR (org_id = ANY (( SELECT service_state.request_orgs() AS request_orgs)::uuid[])))) WITH CHECK ((( SELECT service_state.request_sees_all() AS request_sees_all) OR (org_id = ANY (( SELECT service_state.request_orgs() AS request_orgs)::uuid[]))));

--
-- Name: POLICY projects_of_request_orgs ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON POLICY projects_of_request_orgs ON config.projects IS 'The runtime role sees and changes the projects of the request user''s orgs (all of them for a super admin), nothing without a signed request user.';

--
-- Name: projects projects_reports; Type: POLICY; Schema: config; Owner: -
--

CREATE POLICY projects_reports ON config.projects FOR SELECT TO hierarchy_reader USING (true);

--
-- Name: POLICY projects_reports ON projects; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON POLICY projects_reports ON config.projects IS 'Reports read every project.';

--
-- Name: promoted_orgs; Type: ROW SECURITY; Schema: config; Owner: -
--

ALTER TABLE config.promoted_orgs ENABLE ROW LEVEL SECURITY;

--
-- Name: promoted_orgs promoted_orgs_of_request_orgs; Type: POLICY; Schema: config; Owner: -
--

CREATE POLICY promoted_orgs_of_request_orgs ON config.promoted_orgs FOR SELECT TO hierarchy_app USING ((( SELECT service_state.request_sees_all() AS request_sees_all) OR (org_id = ANY (( SELECT service_state.request_orgs() AS request_orgs)::uuid[]))));

--
-- Name: POLICY promoted_orgs_of_request_orgs ON promoted_orgs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON POLICY promoted_orgs_of_request_orgs ON config.promoted_orgs IS 'The runtime role sees which customer the request user''s orgs stand for (every org for a super admin).';

--
-- Name: promoted_orgs promoted_orgs_reports; Type: POLICY; Schema: config; Owner: -
--

CREATE POLICY promoted_orgs_reports ON config.promoted_orgs FOR SELECT TO hierarchy_reader USING (true);

--
-- Name: POLICY promoted_orgs_reports ON promoted_orgs; Type: COMMENT; Schema: config; Owner: -
--

COMMENT ON POLICY promoted_orgs_reports ON config.promoted_orgs IS 'Reports read every promoted org.';

--
-- PostgreSQL database dump complete
--
