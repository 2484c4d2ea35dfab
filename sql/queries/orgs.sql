-- Orgs. Tenant scoping: a user sees its orgs (%(user_orgs)s, from the token lookup) unless it
-- holds permission all_orgs.
-- Every list statement returns `total` (the row count before LIMIT/OFFSET) for pagination;
-- %(limit)s NULL means no limit.

-- name: list
SELECT o.uuid, o.name, o.created, o.modified, count(*) OVER () AS total
FROM config.orgs o
WHERE %(all_orgs)s::boolean OR o.uuid = ANY (%(user_orgs)s::uuid[])
ORDER BY o.name
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;

-- name: get
SELECT o.uuid, o.name, o.created, o.modified
FROM config.orgs o
WHERE o.uuid = %(org_id)s::uuid
  AND (%(all_orgs)s::boolean OR o.uuid = ANY (%(user_orgs)s::uuid[]));
