-- State of the service itself, outside the Config API's release ladder: the failed-login
-- throttle, shared by every service process and kept across restarts.
--
-- Not a migration: the service throttles logins at every release (6.0 to 6.4), so this file
-- is applied by service/migrations.py `migrate()` under yoyo's migration lock after the
-- ladder's steps, every time (like yoyo's own bookkeeping tables), and no downgrade removes
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
