-- Logins and bearer tokens. Only the SHA-256 of a token is stored.

-- name: user_for_login
-- Release 6.4 (memberships): `role` is the role in the primary org.
SELECT u.uuid, u.email, u.password_hash, u.is_active, m.role
FROM config.users u
LEFT JOIN config.org_memberships m ON m.user_id = u.uuid AND m.is_primary
WHERE lower(u.email) = lower(%(email)s::text);

-- name: user_for_login_one_org
-- Before 6.4's memberships: one org and one role per user, in config.users.
SELECT u.uuid, u.email, u.password_hash, u.is_active, u.role
FROM config.users u
WHERE lower(u.email) = lower(%(email)s::text);

-- name: update_password_hash
-- argon2 parameters changed since the hash was made: store a fresh hash.
UPDATE config.users SET password_hash = %(password_hash)s::text WHERE uuid = %(user_id)s::uuid;

-- name: user_orgs
-- The orgs of a user as login and users/current list them: the primary org first (hdxcli
-- works in orgs[0]), then the others in the order the user joined them.
SELECT o.uuid, o.name
FROM config.org_memberships m
JOIN config.orgs o ON o.uuid = m.org_id
WHERE m.user_id = %(user_id)s::uuid
ORDER BY m.is_primary DESC, m.created, o.name;

-- name: user_orgs_one_org
SELECT o.uuid, o.name
FROM config.users u
JOIN config.orgs o ON o.uuid = u.org_id
WHERE u.uuid = %(user_id)s::uuid;

-- name: create_token
INSERT INTO config.tokens (token_hash, user_id, expires)
VALUES (%(token_hash)s::bytea, %(user_id)s::uuid, now() + make_interval(secs => %(ttl)s::integer));

-- name: user_for_token
-- `state` says why a token is refused (revoked, expired, inactive) so the 401 can say it.
-- For a valid token it also sets who acts (as set_actor does), saving a round trip on
-- every request: the audit triggers and customers.created_by read these settings. (A read
-- runs in autocommit, service/request.py: the settings then end with this statement, which is
-- what a read wants: nothing it runs writes an audit row.)
-- It decides, once per request, everything the other statements are scoped by:
-- `orgs`, the user's orgs (primary first); `write_orgs`, those whose role may change projects
-- (projects.write); `role` and `permissions`: under /orgs/{org}/ (%(org_id)s given) those of
-- the user's role in that org, elsewhere the role of its primary org and the permissions of
-- all its roles (a write touching a project is scoped by `write_orgs` in its statement).
-- `org_visible`: whether the user may see org %(org_id)s as orgs.get decides (true when
-- NULL), so a request under /orgs/{org}/ needs no separate org check: 401, 403 and 404 are
-- answered from this one row. Release 6.4 (memberships); user_for_token_one_org before.
SELECT a.uuid, a.email, a.orgs, a.write_orgs, a.role, a.state, a.permissions,
       set_config('hierarchy.actor', CASE WHEN a.state = 'ok' THEN a.email ELSE '' END, true) AS actor,
       set_config('hierarchy.user_id', CASE WHEN a.state = 'ok' THEN a.uuid::text ELSE '' END, true) AS user_id,
       (%(org_id)s::uuid IS NULL
        OR EXISTS (SELECT 1 FROM config.orgs o
                   WHERE o.uuid = %(org_id)s::uuid
                     AND ('all_orgs' = ANY (a.permissions) OR o.uuid = ANY (a.orgs)))) AS org_visible
FROM (
    SELECT u.uuid, u.email, m.orgs, coalesce(m.write_orgs, '{}') AS write_orgs, m.role,
           CASE WHEN t.revoked IS NOT NULL THEN 'revoked'
                WHEN t.expires <= now() THEN 'expired'
                WHEN NOT u.is_active THEN 'inactive'
                ELSE 'ok' END AS state,
           -- (a permission of several roles repeats: a set to the service, and no sort per request)
           ARRAY(SELECT rp.permission FROM config.role_permissions rp WHERE rp.role = ANY (m.roles)) AS permissions
    FROM config.tokens t
    JOIN config.users u ON u.uuid = t.user_id
    CROSS JOIN LATERAL (
        SELECT array_agg(x.org_id ORDER BY x.is_primary DESC, x.created, x.org_id) AS orgs,
               -- the roles that may change projects: read once per statement (an init plan)
               array_agg(x.org_id) FILTER (WHERE x.role = ANY (ARRAY(SELECT w.role FROM config.role_permissions w
                                                                     WHERE w.permission = 'projects.write')))
                   AS write_orgs,
               coalesce(min(x.role) FILTER (WHERE x.org_id = %(org_id)s::uuid),
                        min(x.role) FILTER (WHERE x.is_primary)) AS role,
               coalesce(array_agg(x.role) FILTER (WHERE x.org_id = %(org_id)s::uuid), array_agg(x.role)) AS roles
        FROM config.org_memberships x
        WHERE x.user_id = u.uuid
    ) m
    WHERE t.token_hash = %(token_hash)s::bytea
) a;

-- name: user_for_token_one_org
-- user_for_token before 6.4's memberships: the user's one org and role are in config.users.
SELECT a.uuid, a.email, a.orgs,
       CASE WHEN 'projects.write' = ANY (a.permissions) THEN a.orgs ELSE '{}' END AS write_orgs,
       a.role, a.state, a.permissions,
       set_config('hierarchy.actor', CASE WHEN a.state = 'ok' THEN a.email ELSE '' END, true) AS actor,
       set_config('hierarchy.user_id', CASE WHEN a.state = 'ok' THEN a.uuid::text ELSE '' END, true) AS user_id,
       (%(org_id)s::uuid IS NULL
        OR EXISTS (SELECT 1 FROM config.orgs o
                   WHERE o.uuid = %(org_id)s::uuid
                     AND ('all_orgs' = ANY (a.permissions) OR o.uuid = ANY (a.orgs)))) AS org_visible
FROM (
    SELECT u.uuid, u.email, ARRAY[u.org_id] AS orgs, u.role,
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
