-- Orgs. Tenant scoping: a user sees its orgs (%(user_orgs)s, from the token lookup) unless it
-- holds permission all_orgs.
-- Every list statement returns `total` (the row count before LIMIT/OFFSET) for pagination;
-- %(limit)s NULL means no limit.
-- `list` and `get` work at every release; the API's `list_promoted` and `get_promoted` (release
-- 6.4: the promotion's tables, migrations/0005) also show the customer an org stands for once
-- the customers are promoted (config.promoted_orgs; `customer` NULL otherwise).

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

-- name: list_promoted
SELECT o.uuid, o.name, o.created, o.modified,
       CASE WHEN c.uuid IS NOT NULL THEN jsonb_build_object('uuid', c.uuid, 'name', c.name) END AS customer,
       count(*) OVER () AS total
FROM config.orgs o
LEFT JOIN config.promoted_orgs po ON po.org_id = o.uuid
LEFT JOIN config.customers c ON c.uuid = po.customer_id
WHERE %(all_orgs)s::boolean OR o.uuid = ANY (%(user_orgs)s::uuid[])
ORDER BY o.name
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;

-- name: get_promoted
SELECT o.uuid, o.name, o.created, o.modified,
       CASE WHEN c.uuid IS NOT NULL THEN jsonb_build_object('uuid', c.uuid, 'name', c.name) END AS customer
FROM config.orgs o
LEFT JOIN config.promoted_orgs po ON po.org_id = o.uuid
LEFT JOIN config.customers c ON c.uuid = po.customer_id
WHERE o.uuid = %(org_id)s::uuid
  AND (%(all_orgs)s::boolean OR o.uuid = ANY (%(user_orgs)s::uuid[]));
