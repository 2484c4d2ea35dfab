-- Users (super_admin only through the API; service.users also uses these).
-- Release 6.4 keeps a user's orgs and roles in config.org_memberships; a statement whose
-- name ends in _one_org is its form before (users.org_id, users.role). `org` and `role` are
-- the primary org's; `memberships` every org (primary first).

-- name: list
SELECT u.uuid, u.email, p.org_id AS org, p.role, ARRAY[p.role] AS roles, u.is_active, u.created, u.modified,
       count(*) OVER () AS total
FROM config.users u
LEFT JOIN config.org_memberships p ON p.user_id = u.uuid AND p.is_primary
ORDER BY lower(u.email)
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;

-- name: list_one_org
SELECT u.uuid, u.email, u.org_id AS org, u.role, ARRAY[u.role] AS roles, u.is_active, u.created, u.modified,
       count(*) OVER () AS total
FROM config.users u
ORDER BY lower(u.email)
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;

-- name: get
SELECT u.uuid, u.email, p.org_id AS org, p.role, ARRAY[p.role] AS roles, u.is_active, u.created, u.modified,
       ARRAY(SELECT jsonb_build_object('org', m.org_id, 'org_name', o.name, 'role', m.role,
                                       'is_primary', m.is_primary)
             FROM config.org_memberships m JOIN config.orgs o ON o.uuid = m.org_id
             WHERE m.user_id = u.uuid
             ORDER BY m.is_primary DESC, m.created, o.name) AS memberships
FROM config.users u
LEFT JOIN config.org_memberships p ON p.user_id = u.uuid AND p.is_primary
WHERE u.uuid = %(user_id)s::uuid;

-- name: get_one_org
SELECT u.uuid, u.email, u.org_id AS org, u.role, ARRAY[u.role] AS roles, u.is_active, u.created, u.modified,
       ARRAY[jsonb_build_object('org', u.org_id, 'org_name', o.name, 'role', u.role,
                                'is_primary', true)] AS memberships
FROM config.users u
JOIN config.orgs o ON o.uuid = u.org_id
WHERE u.uuid = %(user_id)s::uuid;

-- name: create
-- The user and its primary membership, in one statement (the deferred trigger
-- users_have_primary_org checks at commit that it has one).
WITH made AS (
    INSERT INTO config.users (email, password_hash)
    VALUES (%(email)s::text, %(password_hash)s::text)
    RETURNING uuid, email, is_active, created, modified
), member AS (
    INSERT INTO config.org_memberships (user_id, org_id, role, is_primary)
    SELECT m.uuid, %(org_id)s::uuid, %(role)s::text, true FROM made m
    RETURNING org_id, role
)
SELECT m.uuid, m.email, b.org_id AS org, b.role, ARRAY[b.role] AS roles, m.is_active, m.created, m.modified
FROM made m, member b;

-- name: create_one_org
INSERT INTO config.users (email, password_hash, org_id, role)
VALUES (%(email)s::text, %(password_hash)s::text, %(org_id)s::uuid, %(role)s::text)
RETURNING uuid, email, org_id AS org, role, ARRAY[role] AS roles, is_active, created, modified;

-- name: change_membership
-- One membership change through the SQL functions of migrations/0004 (they lock the user,
-- check and refuse with a message naming the user and org): %(action)s is add, remove,
-- set_role or set_primary. No row: no such user (404). The user's memberships after it.
WITH target AS (
    SELECT u.uuid FROM config.users u WHERE u.uuid = %(user_id)s::uuid
), changed AS (
    SELECT CASE %(action)s::text
               WHEN 'add' THEN (config.add_membership(t.uuid, %(org_id)s::uuid, %(role)s::text,
                                                      coalesce(%(primary)s::boolean, false))).org_id
               WHEN 'remove' THEN (config.remove_membership(t.uuid, %(org_id)s::uuid)).org_id
               WHEN 'set_role' THEN (config.set_membership_role(t.uuid, %(org_id)s::uuid, %(role)s::text)).org_id
               WHEN 'set_primary' THEN (config.set_primary_org(t.uuid, %(org_id)s::uuid)).org_id
           END AS org_id
    FROM target t
)
SELECT c.org_id FROM changed c;

-- name: membership
-- The user's membership in org %(org_id)s, or in its primary org when NULL (add_roles and
-- remove_roles act there), with the org's name. No row: not a member of that org.
SELECT m.org_id, o.name AS org_name, m.role
FROM config.org_memberships m
JOIN config.orgs o ON o.uuid = m.org_id
WHERE m.user_id = %(user_id)s::uuid
  AND (m.org_id = %(org_id)s::uuid OR (%(org_id)s::uuid IS NULL AND m.is_primary));

-- name: lock_admin_bootstrap
-- Serialises ensure_admin across processes starting at once (transaction-scoped).
SELECT pg_advisory_xact_lock(hashtextextended('hierarchy.ensure_admin', 0));

-- name: any_super_admin
SELECT EXISTS (SELECT 1 FROM config.users u JOIN config.org_memberships m ON m.user_id = u.uuid
               WHERE m.role = 'super_admin' AND u.is_active) AS present;

-- name: any_super_admin_one_org
SELECT EXISTS (SELECT 1 FROM config.users WHERE role = 'super_admin' AND is_active) AS present;

-- name: has_memberships
-- Whether the schema has release 6.4's memberships (which statement forms apply).
SELECT to_regclass('config.org_memberships') IS NOT NULL AS present;

-- name: first_org
SELECT o.uuid FROM config.orgs o ORDER BY o.created, o.name LIMIT 1;
