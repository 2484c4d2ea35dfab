-- Release 6.0: the Config API before Customers. Org -> Project, plus the users,
-- roles, tokens, tunables and audit log that every later release builds on.
--
-- Conventions used by every migration:
--   * everything lives in schema `config`; every object a DBA meets has a COMMENT;
--   * name checks use `+`/`*` and a length test, never bounded repetition (`{0,254}`): the
--     regex engine is slow on bounds (100,000 names: 3.3 to 4.0 s against 0.13 s), and a
--     check runs on every INSERT and UPDATE of the row, an association included;
--   * the acting application user is passed per transaction in the setting
--     `hierarchy.actor` (an email) and `hierarchy.user_id` (a uuid); plain SQL
--     sessions fall back to the database role, so the audit log always names someone.

CREATE SCHEMA config;
COMMENT ON SCHEMA config IS 'Config API objects: orgs, projects, users, tunables, audit log (and customers from release 6.1).';

-- ---------------------------------------------------------------------------
-- Release marker
-- ---------------------------------------------------------------------------

-- The schema knows its own release, so tools can trust the database rather than bookkeeping.
CREATE FUNCTION config.schema_release() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '6.0'::text $$;
COMMENT ON FUNCTION config.schema_release() IS 'The Config API release this schema is at (6.0 before Customers, 6.1 with them).';

-- ---------------------------------------------------------------------------
-- Helpers shared by triggers
-- ---------------------------------------------------------------------------

-- Who is acting: the application user set by the service, else the database role.
CREATE FUNCTION config.current_actor() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('hierarchy.actor', true), ''), session_user::text)
$$;
COMMENT ON FUNCTION config.current_actor() IS 'The acting user: setting hierarchy.actor when the service sets it, else the database role (psql, cron).';

-- The application user id, when the service sets one.
CREATE FUNCTION config.current_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('hierarchy.user_id', true), '')::uuid
$$;
COMMENT ON FUNCTION config.current_user_id() IS 'The acting application user uuid (setting hierarchy.user_id), NULL for plain SQL sessions.';

-- Bumps `modified`; attached to the columns that describe an object, so bookkeeping
-- updates (such as a project''s customer association) leave `modified` alone.
CREATE FUNCTION config.touch_modified() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.modified := now();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION config.touch_modified() IS 'BEFORE UPDATE trigger: sets modified = now().';

-- ---------------------------------------------------------------------------
-- Orgs and projects
-- ---------------------------------------------------------------------------

CREATE TABLE config.orgs (
    uuid     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name     text NOT NULL UNIQUE
             CONSTRAINT orgs_name_valid CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$' AND length(name) <= 255),
    created  timestamptz NOT NULL DEFAULT now(),
    modified timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE config.orgs IS 'Organisations: the top of the hierarchy. Release 6.0 has one.';
COMMENT ON COLUMN config.orgs.name IS '1 to 255 characters: letters, digits, _ . - ; starts with a letter or digit.';

CREATE TRIGGER orgs_touch BEFORE UPDATE OF name ON config.orgs
    FOR EACH ROW EXECUTE FUNCTION config.touch_modified();

CREATE TABLE config.projects (
    uuid        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES config.orgs (uuid) ON DELETE RESTRICT,
    name        text NOT NULL
                CONSTRAINT projects_name_valid CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_-]*$' AND length(name) <= 255),
    description text,
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb
                CONSTRAINT projects_settings_object CHECK (jsonb_typeof(settings) = 'object'),
    created     timestamptz NOT NULL DEFAULT now(),
    modified    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_org_name_unique UNIQUE (org_id, name)
);
COMMENT ON TABLE config.projects IS 'Projects of an org. Release 6.1 also hangs each one under exactly one customer.';
COMMENT ON COLUMN config.projects.org_id IS 'The org the project belongs to; projects of another org are invisible to its users.';
COMMENT ON COLUMN config.projects.name IS '1 to 255 characters: letters, digits, _ and -; starts with a letter or digit; unique within the org.';
COMMENT ON COLUMN config.projects.settings IS 'Free-form project settings (a JSON object).';
COMMENT ON COLUMN config.projects.modified IS 'Last change of name, description or settings (association changes are in audit_log, not here).';

CREATE TRIGGER projects_touch BEFORE UPDATE OF name, description, settings ON config.projects
    FOR EACH ROW EXECUTE FUNCTION config.touch_modified();

-- ---------------------------------------------------------------------------
-- Users, roles, permissions, tokens
-- ---------------------------------------------------------------------------

CREATE TABLE config.roles (
    name        text PRIMARY KEY,
    description text NOT NULL
);
COMMENT ON TABLE config.roles IS 'Roles a user can hold; what each allows is in role_permissions.';

CREATE TABLE config.role_permissions (
    role       text NOT NULL REFERENCES config.roles (name) ON DELETE CASCADE,
    permission text NOT NULL,
    PRIMARY KEY (role, permission)
);
COMMENT ON COLUMN config.role_permissions.role IS 'The role granted the permission.';
COMMENT ON TABLE config.role_permissions IS 'Permissions granted to each role (checked by the HTTP service).';
COMMENT ON COLUMN config.role_permissions.permission IS 'One of: all_orgs, orgs.read, projects.read, projects.write, customers.read, customers.write, tunables.read, tunables.write, jobs.read, jobs.run, mode.switch, users.read, users.write, audit.read.';

INSERT INTO config.roles (name, description) VALUES
    ('super_admin', 'Everything, in every org: tunables, users, mode switches.'),
    ('operator',    'Its org''s projects; creating customers and associating its org''s projects; running the job.'),
    ('read_only',   'Reads its org''s objects.');

INSERT INTO config.role_permissions (role, permission)
SELECT 'super_admin', p FROM unnest(ARRAY[
    'all_orgs', 'orgs.read', 'projects.read', 'projects.write', 'customers.read', 'customers.write',
    'tunables.read', 'tunables.write', 'jobs.read', 'jobs.run', 'mode.switch',
    'users.read', 'users.write', 'audit.read']) AS p
UNION ALL
SELECT 'operator', p FROM unnest(ARRAY[
    'orgs.read', 'projects.read', 'projects.write', 'customers.read', 'customers.write',
    'tunables.read', 'jobs.read', 'jobs.run', 'audit.read']) AS p
UNION ALL
SELECT 'read_only', p FROM unnest(ARRAY[
    'orgs.read', 'projects.read', 'customers.read', 'tunables.read', 'jobs.read']) AS p;

CREATE TABLE config.users (
    uuid          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL
                  CONSTRAINT users_email_valid CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    password_hash text NOT NULL,
    org_id        uuid NOT NULL REFERENCES config.orgs (uuid) ON DELETE RESTRICT,
    role          text NOT NULL REFERENCES config.roles (name),
    is_active     boolean NOT NULL DEFAULT true,
    created       timestamptz NOT NULL DEFAULT now(),
    modified      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_unique ON config.users (lower(email));
COMMENT ON TABLE config.users IS 'People who call the API. A user belongs to one org and holds one role.';
COMMENT ON COLUMN config.users.email IS 'Login name; unique regardless of case.';
COMMENT ON COLUMN config.users.org_id IS 'The org whose objects the user sees (super_admin: every org).';
COMMENT ON COLUMN config.users.role IS 'super_admin, operator or read_only (see role_permissions).';
COMMENT ON COLUMN config.users.password_hash IS 'argon2id hash (PHC string) written by the service; never the password.';
COMMENT ON COLUMN config.users.is_active IS 'A deactivated user cannot log in and its tokens stop working.';

CREATE TRIGGER users_touch BEFORE UPDATE OF email, password_hash, org_id, role, is_active ON config.users
    FOR EACH ROW EXECUTE FUNCTION config.touch_modified();

CREATE TABLE config.tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES config.users (uuid) ON DELETE CASCADE,
    created    timestamptz NOT NULL DEFAULT now(),
    expires    timestamptz NOT NULL,
    revoked    timestamptz
);
CREATE INDEX tokens_user_idx ON config.tokens (user_id);
CREATE INDEX tokens_expires_idx ON config.tokens (expires);
COMMENT ON TABLE config.tokens IS 'Opaque bearer tokens. Only the SHA-256 of a token is stored; the token itself is shown once, at login.';
COMMENT ON COLUMN config.tokens.user_id IS 'The user the token authenticates.';
COMMENT ON COLUMN config.tokens.expires IS 'After this instant the token is refused (24 h after login).';
COMMENT ON COLUMN config.tokens.token_hash IS 'sha256 of the bearer token as sent by the client.';
COMMENT ON COLUMN config.tokens.revoked IS 'Set by logout; a revoked token is refused.';

-- ---------------------------------------------------------------------------
-- Tunables
-- ---------------------------------------------------------------------------

CREATE TABLE config.tunables (
    name        text PRIMARY KEY,
    value       jsonb NOT NULL,
    value_type  text NOT NULL CONSTRAINT tunables_type_known CHECK (value_type IN ('boolean', 'integer')),
    minimum     bigint,
    maximum     bigint,
    description text NOT NULL,
    modified    timestamptz NOT NULL DEFAULT now(),
    modified_by text NOT NULL DEFAULT config.current_actor()
);
COMMENT ON TABLE config.tunables IS 'Cluster settings. Part of release 6.0 so they can be set before an upgrade and survive a downgrade.';
COMMENT ON COLUMN config.tunables.value IS 'The current value, as JSON (true/false, or an integer).';
COMMENT ON COLUMN config.tunables.modified_by IS 'Who last changed the value (application user or database role).';
COMMENT ON COLUMN config.tunables.value_type IS 'JSON type the value must have: boolean or integer (checked by trigger tunables_validate).';
COMMENT ON COLUMN config.tunables.minimum IS 'Smallest allowed value for integer tunables.';
COMMENT ON COLUMN config.tunables.maximum IS 'Largest allowed value for integer tunables (never above 2147483647, what the job can use).';
COMMENT ON COLUMN config.tunables.modified IS 'When the value last changed (rule 6 compares it with when a project became an orphan).';

-- Refuses a value of the wrong type or below the minimum, with a message that names the tunable.
CREATE FUNCTION config.tunables_validate() RETURNS trigger
LANGUAGE plpgsql AS $$
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
$$;
COMMENT ON FUNCTION config.tunables_validate() IS 'BEFORE trigger on tunables: type and minimum checks, modified/modified_by bookkeeping.';

CREATE TRIGGER tunables_validate BEFORE INSERT OR UPDATE ON config.tunables
    FOR EACH ROW EXECUTE FUNCTION config.tunables_validate();

INSERT INTO config.tunables (name, value, value_type, minimum, maximum, description) VALUES
    ('turbine_api_feature_migrate_projects_to_orgs', 'false', 'boolean', NULL, NULL,
     'false: projects without a customer join their org''s single default customer; true: each gets a customer of its own.'),
    ('customer_orphan_grace_seconds', '120', 'integer', 0, 86400,
     'Seconds an orphaned project waits before the periodic job re-homes it (a forced run or a mode change skips the wait).');

-- Reads a tunable's value (NULL when it does not exist).
CREATE FUNCTION config.tunable(p_name text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT value FROM config.tunables WHERE name = p_name
$$;
COMMENT ON FUNCTION config.tunable(text) IS 'The value of one tunable, as jsonb.';

-- ---------------------------------------------------------------------------
-- Audit log
-- ---------------------------------------------------------------------------

CREATE TABLE config.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL DEFAULT config.current_actor(),
    action      text NOT NULL,
    object_type text NOT NULL,
    object_id   uuid,
    changed     text[],
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_object_idx ON config.audit_log (object_type, object_id, at);
-- A time range (the list's since/until) reads a block range index: rows are appended in time
-- order, so a few BRIN pages stand for the whole table, and every audited change pays no
-- third B-tree insertion (about 30 % of writing an audit row; bench/ANALYSIS.md, the tick).
-- The list itself is ordered by id, and "what happened to X" is audit_log_object_idx.
CREATE INDEX audit_log_at_idx ON config.audit_log USING brin (at);
COMMENT ON INDEX config.audit_log_at_idx IS 'Time ranges of the audit log (BRIN: rows are appended in time order).';
COMMENT ON TABLE config.audit_log IS 'Who changed what: one row per changed object, written by triggers whoever writes (API, job, psql).';
COMMENT ON COLUMN config.audit_log.at IS 'When the change was made (transaction start).';
COMMENT ON COLUMN config.audit_log.object_id IS 'uuid of the changed object (NULL for tunables and summary rows such as a downgrade).';
COMMENT ON COLUMN config.audit_log.actor IS 'Application user (hierarchy.actor) or database role.';
COMMENT ON COLUMN config.audit_log.action IS 'insert, update, delete, or a named operation (e.g. downgrade).';
COMMENT ON COLUMN config.audit_log.object_type IS 'Table name of the object: orgs, projects, customers, tunables, users.';
COMMENT ON COLUMN config.audit_log.changed IS 'For updates: the columns whose value changed.';
COMMENT ON COLUMN config.audit_log.before IS 'For updates the changed columns only; for deletes the whole row.';
COMMENT ON COLUMN config.audit_log.after IS 'For updates the changed columns only; for inserts the whole row.';

-- Statement-level audit with transition tables: one INSERT ... SELECT per statement,
-- so bulk loads pay a set-based cost. TG_ARGV lists columns never to record.
CREATE FUNCTION config.audit_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
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
$$;
COMMENT ON FUNCTION config.audit_changes() IS 'AFTER statement trigger: writes one audit_log row per inserted, changed or deleted row (arguments: columns to leave out).';

-- No JIT: the UPDATE branch joins two transition tables, estimated far past jit_above_cost
-- for a bulk update; compiling it costs more than running it (see 0002, "No JIT").
ALTER FUNCTION config.audit_changes() SET jit = off;

CREATE TRIGGER orgs_audit_insert AFTER INSERT ON config.orgs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes();
CREATE TRIGGER orgs_audit_update AFTER UPDATE ON config.orgs REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('modified');
CREATE TRIGGER orgs_audit_delete AFTER DELETE ON config.orgs REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes();

CREATE TRIGGER projects_audit_insert AFTER INSERT ON config.projects REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes();
CREATE TRIGGER projects_audit_update AFTER UPDATE ON config.projects REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('modified');
CREATE TRIGGER projects_audit_delete AFTER DELETE ON config.projects REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes();

CREATE TRIGGER users_audit_insert AFTER INSERT ON config.users REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('password_hash');
CREATE TRIGGER users_audit_update AFTER UPDATE ON config.users REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('password_hash', 'modified');
CREATE TRIGGER users_audit_delete AFTER DELETE ON config.users REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_changes('password_hash');

-- Tunables are keyed by name, not uuid: audited by their own row trigger.
CREATE FUNCTION config.audit_tunable() RETURNS trigger
LANGUAGE plpgsql AS $$
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
COMMENT ON FUNCTION config.audit_tunable() IS 'AFTER UPDATE trigger on tunables: records value changes in audit_log.';

CREATE TRIGGER tunables_audit AFTER UPDATE ON config.tunables
    FOR EACH ROW EXECUTE FUNCTION config.audit_tunable();

COMMENT ON TRIGGER orgs_touch ON config.orgs IS 'Bumps modified when the name changes.';
COMMENT ON TRIGGER projects_touch ON config.projects IS 'Bumps modified when name, description or settings change (not on association changes).';
COMMENT ON TRIGGER users_touch ON config.users IS 'Bumps modified when a user changes.';
COMMENT ON TRIGGER tunables_validate ON config.tunables IS 'Type and minimum checks; modified/modified_by bookkeeping.';
COMMENT ON TRIGGER tunables_audit ON config.tunables IS 'Writes tunable value changes to audit_log.';
COMMENT ON TRIGGER orgs_audit_insert ON config.orgs IS 'audit_log rows for new orgs.';
COMMENT ON TRIGGER orgs_audit_update ON config.orgs IS 'audit_log rows for changed orgs.';
COMMENT ON TRIGGER orgs_audit_delete ON config.orgs IS 'audit_log rows for deleted orgs.';
COMMENT ON TRIGGER projects_audit_insert ON config.projects IS 'audit_log rows for new projects (including the customer they were given).';
COMMENT ON TRIGGER projects_audit_update ON config.projects IS 'audit_log rows for changed projects, including association changes (changed contains customer_id).';
COMMENT ON TRIGGER projects_audit_delete ON config.projects IS 'audit_log rows for deleted projects.';
COMMENT ON TRIGGER users_audit_insert ON config.users IS 'audit_log rows for new users (never the password hash).';
COMMENT ON TRIGGER users_audit_update ON config.users IS 'audit_log rows for changed users (never the password hash).';
COMMENT ON TRIGGER users_audit_delete ON config.users IS 'audit_log rows for deleted users (never the password hash).';

-- ---------------------------------------------------------------------------
-- Seed: one org with the two projects every cluster has
-- ---------------------------------------------------------------------------

WITH org AS (
    INSERT INTO config.orgs (name) VALUES ('hydrolix') RETURNING uuid
)
INSERT INTO config.projects (org_id, name, description)
SELECT org.uuid, p.name, p.description
FROM org, (VALUES ('hydro', 'Cluster internal project'),
                  ('sample_project', 'Sample data project')) AS p (name, description);
