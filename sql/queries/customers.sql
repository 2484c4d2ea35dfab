-- Customers are global. A user with all_orgs sees every customer; any other user sees the
-- customers holding a project of its org and the customers it created (created_by), and
-- only its org's projects in `projects`. The predicate is repeated in each statement so
-- every statement stands alone for a reviewer.

-- name: list
-- The page is chosen first (ordered by the unique name: an index scan), and only its rows
-- get their `projects` array; `total` is counted once, not carried through a window over
-- every visible customer. A user who sees every customer gets the count from
-- config.customer_count (a few rows of customer_counts, not 100,000 customers): exactly
-- count(*) of the same snapshot.
WITH visible AS NOT MATERIALIZED (
    SELECT c.uuid, c.name, c.description, c.origin, c.created, c.modified
    FROM config.customers c
    WHERE (%(all_orgs)s::boolean
           OR c.created_by = %(user_id)s::uuid
           OR EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = c.uuid AND p.org_id = %(user_org)s::uuid))
      AND (%(name)s::text IS NULL OR c.name = %(name)s::text)
      AND (%(origin)s::text IS NULL OR c.origin = %(origin)s::text)
), page AS (
    SELECT * FROM visible v
    ORDER BY v.name, v.uuid
    LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint
)
SELECT c.uuid, c.name, c.description, c.origin,
       ARRAY(SELECT p.uuid FROM config.projects p
             WHERE p.customer_id = c.uuid AND (%(all_orgs)s::boolean OR p.org_id = %(user_org)s::uuid)
             ORDER BY p.name, p.uuid) AS projects,
       c.created, c.modified,
       (SELECT CASE WHEN %(all_orgs)s::boolean AND %(name)s::text IS NULL
                    THEN config.customer_count(%(origin)s::text)
                    ELSE (SELECT count(*) FROM visible) END) AS total
FROM page c
ORDER BY c.name, c.uuid;

-- name: all_json
-- The plain (unpaginated) list, one JSON object per row as the API writes a Customer, for
-- streaming: the service sends the rows as they come instead of building the list in memory.
-- The projects arrays come from one grouped pass over projects, not a lookup per customer.
-- Times are written in UTC as the API writes them ("Z"; microseconds only when not zero).
SELECT row_to_json(r)::text AS customer
FROM (
    SELECT c.uuid, c.name, c.description, c.origin, coalesce(g.projects, '{}') AS projects,
           to_char(c.created AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', c.created) = c.created
               THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END) AS created,
           to_char(c.modified AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', c.modified) = c.modified
               THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END) AS modified
    FROM config.customers c
    LEFT JOIN (
        SELECT p.customer_id, array_agg(p.uuid ORDER BY p.name, p.uuid) AS projects
        FROM config.projects p
        WHERE p.customer_id IS NOT NULL AND (%(all_orgs)s::boolean OR p.org_id = %(user_org)s::uuid)
        GROUP BY p.customer_id
    ) g ON g.customer_id = c.uuid
    WHERE (%(all_orgs)s::boolean
           OR c.created_by = %(user_id)s::uuid
           OR g.customer_id IS NOT NULL)
      AND (%(name)s::text IS NULL OR c.name = %(name)s::text)
      AND (%(origin)s::text IS NULL OR c.origin = %(origin)s::text)
    ORDER BY c.name, c.uuid
) r;

-- name: get
-- `mine` says whether the user may change or delete it (all_orgs, or it created it).
SELECT c.uuid, c.name, c.description, c.origin,
       ARRAY(SELECT p.uuid FROM config.projects p
             WHERE p.customer_id = c.uuid AND (%(all_orgs)s::boolean OR p.org_id = %(user_org)s::uuid)
             ORDER BY p.name, p.uuid) AS projects,
       c.created, c.modified,
       (%(all_orgs)s::boolean OR c.created_by IS NOT DISTINCT FROM %(user_id)s::uuid) AS mine
FROM config.customers c
WHERE c.uuid = %(customer_id)s::uuid
  AND (%(all_orgs)s::boolean
       OR c.created_by = %(user_id)s::uuid
       OR EXISTS (SELECT 1 FROM config.projects p WHERE p.customer_id = c.uuid AND p.org_id = %(user_org)s::uuid));

-- name: create
-- created_by defaults to config.current_user_id() (the request's hierarchy.user_id).
INSERT INTO config.customers (name, description, origin)
VALUES (%(name)s::text, %(description)s::text, 'manual')
RETURNING uuid;

-- name: update
UPDATE config.customers c SET
    name        = CASE WHEN %(set_name)s::boolean THEN %(name)s::text ELSE c.name END,
    description = CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE c.description END
WHERE c.uuid = %(customer_id)s::uuid
RETURNING c.uuid;

-- name: delete
-- Before 6.4 ON DELETE SET NULL orphans its projects and the job re-homes them (rule 6); from
-- 6.4 one holding projects is refused (trigger customers_keep_projects, ON DELETE RESTRICT).
DELETE FROM config.customers c WHERE c.uuid = %(customer_id)s::uuid RETURNING c.uuid;

-- name: add_projects
-- Moves the given projects (already checked visible) to the customer; returns those moved.
-- The rows are locked in uuid order first, so two calls on overlapping sets cannot deadlock.
WITH target AS (
    SELECT p.uuid FROM config.projects p
    WHERE p.uuid = ANY (%(projects)s::uuid[]) AND p.customer_id IS DISTINCT FROM %(customer_id)s::uuid
    ORDER BY p.uuid
    FOR NO KEY UPDATE
)
UPDATE config.projects p SET customer_id = %(customer_id)s::uuid
FROM target t
WHERE p.uuid = t.uuid AND p.customer_id IS DISTINCT FROM %(customer_id)s::uuid
RETURNING p.uuid;

-- name: remove_projects
-- Orphans the given projects if they belong to the customer; returns those removed.
-- Locked in uuid order first, as add_projects.
WITH target AS (
    SELECT p.uuid FROM config.projects p
    WHERE p.uuid = ANY (%(projects)s::uuid[]) AND p.customer_id = %(customer_id)s::uuid
    ORDER BY p.uuid
    FOR NO KEY UPDATE
)
UPDATE config.projects p SET customer_id = NULL
FROM target t
WHERE p.uuid = t.uuid AND p.customer_id = %(customer_id)s::uuid
RETURNING p.uuid;
