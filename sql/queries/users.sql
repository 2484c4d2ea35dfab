-- Users (super_admin only through the API; service.users also uses these).

-- name: list
SELECT u.uuid, u.email, u.org_id AS org, u.role, u.is_active, u.created, u.modified,
       count(*) OVER () AS total
FROM config.users u
ORDER BY lower(u.email)
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;

-- name: create
INSERT INTO config.users (email, password_hash, org_id, role)
VALUES (%(email)s::text, %(password_hash)s::text, %(org_id)s::uuid, %(role)s::text)
RETURNING uuid, email, org_id AS org, role, is_active, created, modified;

-- name: lock_admin_bootstrap
-- Serialises ensure_admin across processes starting at once (transaction-scoped).
SELECT pg_advisory_xact_lock(hashtextextended('hierarchy.ensure_admin', 0));

-- name: any_super_admin
SELECT EXISTS (SELECT 1 FROM config.users WHERE role = 'super_admin' AND is_active) AS present;

-- name: first_org
SELECT o.uuid FROM config.orgs o ORDER BY o.created, o.name LIMIT 1;
