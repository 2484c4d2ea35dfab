-- State of the service itself, outside the Config API's release ladder: the failed-login
-- throttle, shared by every service process and kept across restarts; and the guard of the
-- SECURITY DEFINER functions (at the end).
--
-- Not a migration: the service throttles logins at every release (6.0 to 6.4), so this file
-- is applied by service/migrations.py `migrate()` under yoyo's migration lock before and after
-- the ladder's steps, every time (like yoyo's own bookkeeping tables), and no downgrade removes
-- it. It must stay idempotent (IF NOT EXISTS, CREATE OR REPLACE, COMMENT ON). The statements
-- that use it are sql/queries/throttle.sql.

CREATE SCHEMA IF NOT EXISTS service_state;
COMMENT ON SCHEMA service_state IS
    'State of the service itself, outside the Config API release ladder (sql/service_state.sql): applied at every release, removed by no downgrade.';

CREATE TABLE IF NOT EXISTS service_state.login_failures (
    scope text NOT NULL,
    key text NOT NULL,
    attempts timestamptz[] NOT NULL,
    expires timestamptz NOT NULL,
    CONSTRAINT login_failures_pkey PRIMARY KEY (scope, key),
    CONSTRAINT login_failures_scope_known CHECK (scope IN ('account', 'address'))
);
CREATE INDEX IF NOT EXISTS login_failures_expires_idx ON service_state.login_failures (expires);

COMMENT ON TABLE service_state.login_failures IS
    'The failed-login throttle: recent login attempts per account and per client address. A login counts as an attempt before its password is checked (throttle.attempt); a success clears its account and takes its own attempt back. Rows past expires are pruned a few at a time by the next attempt. To lift a throttle: DELETE the row.';
COMMENT ON COLUMN service_state.login_failures.scope IS
    'account (key: the lower-cased email given at login, whether or not such a user exists) or address (key: the client address the service saw).';
COMMENT ON COLUMN service_state.login_failures.key IS 'The lower-cased email, or the client address (see scope).';
COMMENT ON COLUMN service_state.login_failures.attempts IS
    'When the recent attempts were made, oldest first: at most the limit of the scope (5 per account, 20 per address in 60 s, service/auth.py).';
COMMENT ON COLUMN service_state.login_failures.expires IS
    'When the newest attempt leaves the window: from then on the row throttles nothing and may be pruned.';
COMMENT ON INDEX service_state.login_failures_expires_idx IS 'Finds expired rows for pruning.';

CREATE OR REPLACE FUNCTION service_state.recent_attempts(attempts timestamptz[], window_seconds integer)
RETURNS timestamptz[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(a ORDER BY a), '{}')
    FROM unnest(attempts) AS a
    WHERE a > now() - make_interval(secs => window_seconds)
$$;
COMMENT ON FUNCTION service_state.recent_attempts(timestamptz[], integer) IS
    'The attempts still inside the window of window_seconds, oldest first.';

CREATE OR REPLACE FUNCTION service_state.without_attempt(attempts timestamptz[], attempt timestamptz)
RETURNS timestamptz[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN array_position(attempts, attempt) IS NULL THEN attempts
                ELSE attempts[:array_position(attempts, attempt) - 1]
                     || attempts[array_position(attempts, attempt) + 1:] END
$$;
COMMENT ON FUNCTION service_state.without_attempt(timestamptz[], timestamptz) IS
    'attempts without one occurrence of attempt: an attempt taken back (a success, or a refusal by the other scope).';

-- The guard of the SECURITY DEFINER functions that do more than their caller may (the mode
-- switch, the memberships, the promotion, the job's forced and dry runs: docs/dba.md, "Who may
-- call what"). Each calls it as its first statement, so the check is inside the function that
-- does the work whoever calls it. Here rather than in sql/privileges.sql because it must exist
-- before a migration step runs one of them (the 6.1 step ends with a forced run of the job):
-- migrate() applies this file before the steps too. The request user it checks is the signed
-- one of sql/privileges.sql (service_state.request_user, set by the token lookup only).
CREATE OR REPLACE FUNCTION service_state.require_request_permission(p_function text, p_permission text)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
$$;
COMMENT ON FUNCTION service_state.require_request_permission(text, text) IS
    'The guard the SECURITY DEFINER functions that do more than their caller may call first: a superuser or a member of the schema''s owner passes; any other session (the runtime role) needs a signed request user (service_state.request_user) whose roles hold permission p_permission, else SQLSTATE 42501 naming p_function. Called by them only.';
