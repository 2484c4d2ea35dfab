-- Logins and bearer tokens. Only the SHA-256 of a token is stored.

-- name: user_for_login
SELECT u.uuid, u.email, u.password_hash, u.is_active, u.org_id, u.role
FROM config.users u
WHERE lower(u.email) = lower(%(email)s::text);

-- name: update_password_hash
-- argon2 parameters changed since the hash was made: store a fresh hash.
UPDATE config.users SET password_hash = %(password_hash)s::text WHERE uuid = %(user_id)s::uuid;

-- name: login_details
SELECT o.uuid, o.name FROM config.orgs o WHERE o.uuid = %(org_id)s::uuid;

-- name: create_token
INSERT INTO config.tokens (token_hash, user_id, expires)
VALUES (%(token_hash)s::bytea, %(user_id)s::uuid, now() + make_interval(secs => %(ttl)s::integer));

-- name: user_for_token
-- `state` says why a token is refused (revoked, expired, inactive) so the 401 can say it.
-- For a valid token it also sets who acts (as set_actor does), saving a round trip on
-- every request: the audit triggers and customers.created_by read these settings. (A read
-- runs in autocommit, service/request.py: the settings then end with this statement, which is
-- what a read wants: nothing it runs writes an audit row.)
-- `org_visible`: whether the user may see org %(org_id)s as orgs.get decides (true when
-- NULL), so a request under /orgs/{org}/ needs no separate org check: 401, 403 and 404 are
-- answered from this one row.
SELECT a.uuid, a.email, a.org_id, a.role, a.state, a.permissions,
       set_config('hierarchy.actor', CASE WHEN a.state = 'ok' THEN a.email ELSE '' END, true) AS actor,
       set_config('hierarchy.user_id', CASE WHEN a.state = 'ok' THEN a.uuid::text ELSE '' END, true) AS user_id,
       (%(org_id)s::uuid IS NULL
        OR EXISTS (SELECT 1 FROM config.orgs o
                   WHERE o.uuid = %(org_id)s::uuid
                     AND ('all_orgs' = ANY (a.permissions) OR o.uuid = a.org_id))) AS org_visible
FROM (
    SELECT u.uuid, u.email, u.org_id, u.role,
           CASE WHEN t.revoked IS NOT NULL THEN 'revoked'
                WHEN t.expires <= now() THEN 'expired'
                WHEN NOT u.is_active THEN 'inactive'
                ELSE 'ok' END AS state,
           ARRAY(SELECT rp.permission FROM config.role_permissions rp WHERE rp.role = u.role) AS permissions
    FROM config.tokens t
    JOIN config.users u ON u.uuid = t.user_id
    WHERE t.token_hash = %(token_hash)s::bytea
) a;

-- name: revoke_token
UPDATE config.tokens SET revoked = now() WHERE token_hash = %(token_hash)s::bytea AND revoked IS NULL;

-- name: set_actor
-- Who acts, for the audit triggers and customers.created_by (transaction-scoped).
SELECT set_config('hierarchy.actor', %(actor)s::text, true),
       set_config('hierarchy.user_id', %(user_id)s::text, true);

-- name: prune_tokens
-- Tokens expired for a day are useless; the login path prunes a few at a time.
DELETE FROM config.tokens
WHERE token_hash IN (SELECT token_hash FROM config.tokens
                     WHERE expires < now() - interval '1 day' LIMIT 100);
