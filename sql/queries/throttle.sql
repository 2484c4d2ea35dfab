-- The failed-login throttle (service_state.login_failures, sql/service_state.sql), per account
-- and per client address, shared by every service process. Concurrency belongs to the
-- database: each statement locks the rows it decides on.

-- name: attempt
-- A login attempt, counted before its password is checked: the check and the record in one
-- statement. For each scope (the account, the address) the attempt is counted when fewer than
-- the scope's limit of attempts are recent, under the row's lock (ON CONFLICT DO UPDATE ...
-- WHERE), so of two processes racing for the last try only one gets it. One row per scope:
-- `counted` false means that scope refused (429), `retry_after` its wait in seconds; `at`
-- names this attempt for throttle.succeeded and throttle.take_back. The rows as the
-- statement's snapshot saw them (`seen`) give the wait; a refusal decided on a newer row
-- falls back to the whole window. Also prunes up to 10 expired rows of other keys.
WITH keys (scope, key, max_attempts) AS (
    SELECT * FROM (VALUES ('account', lower(%(email)s::text), %(account_limit)s::integer),
                          ('address', %(address)s::text, %(address_limit)s::integer)) v
    WHERE v.column2 IS NOT NULL
), seen AS (
    SELECT f.scope, service_state.recent_attempts(f.attempts, %(window)s::integer) AS recent
    FROM service_state.login_failures f JOIN keys k USING (scope, key)
), pruned AS (
    DELETE FROM service_state.login_failures f
    WHERE (f.scope, f.key) IN (SELECT o.scope, o.key FROM service_state.login_failures o
                               WHERE o.expires < now()
                                 AND (o.scope, o.key) NOT IN (SELECT scope, key FROM keys)
                               ORDER BY o.expires LIMIT 10
                               FOR UPDATE SKIP LOCKED)
), counted AS (
    INSERT INTO service_state.login_failures AS f (scope, key, attempts, expires)
    SELECT scope, key, ARRAY[now()], now() + make_interval(secs => %(window)s::integer) FROM keys
    ON CONFLICT (scope, key) DO UPDATE
    SET attempts = service_state.recent_attempts(f.attempts, %(window)s::integer) || now(),
        expires = now() + make_interval(secs => %(window)s::integer)
    WHERE cardinality(service_state.recent_attempts(f.attempts, %(window)s::integer))
          < CASE f.scope WHEN 'account' THEN %(account_limit)s::integer ELSE %(address_limit)s::integer END
    RETURNING f.scope
)
SELECT k.scope,
       now() AS at,
       k.scope IN (SELECT scope FROM counted) AS counted,
       greatest(1, ceil(extract(epoch FROM
           coalesce(s.recent[cardinality(s.recent) - k.max_attempts + 1], now())
           + make_interval(secs => %(window)s::integer) - now())))::integer AS retry_after
FROM keys k LEFT JOIN seen s USING (scope);

-- name: succeeded
-- The password was right: the account's attempts are forgotten (as before the throttle moved
-- here), and the address takes back this attempt only (one success does not forgive the
-- failures of others behind the same address).
WITH cleared AS (
    DELETE FROM service_state.login_failures
    WHERE scope = 'account' AND key = lower(%(email)s::text)
)
UPDATE service_state.login_failures f
SET attempts = service_state.without_attempt(f.attempts, %(at)s::timestamptz)
WHERE f.scope = 'address' AND f.key = %(address)s::text;

-- name: take_back
-- An attempt that was not a failure after all: refused by the other scope (429), or with the
-- right password for a disabled account. Removes it from both scopes.
UPDATE service_state.login_failures f
SET attempts = service_state.without_attempt(f.attempts, %(at)s::timestamptz)
WHERE (f.scope, f.key) IN (('account', lower(%(email)s::text)), ('address', %(address)s::text));
