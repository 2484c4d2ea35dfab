-- Customers are global. A user with all_orgs sees every customer; any other user sees the
-- customers holding a project of one of its orgs (%(user_orgs)s, from the token lookup) and
-- the customers it created (created_by), and only its orgs' projects in `projects`. Moving a
-- project (add_projects, remove_projects) needs projects.write in the project's org: those
-- are %(write_orgs)s. The conditions are spelt out here, in the same words each time
-- ("customer visible", "org visible", "org writable"): migrations/0002's config.customer_visible
-- and config.org_visible take one org, and a user has a list from release 6.4 (the same
-- statements serve 6.1, where the list has one org). config.customer_mine is unchanged.
--
-- Every write carries its own guard: the visibility and ownership conditions sit in the
-- statement that changes the rows (docs/design.md, "Authorisation"), and the statement
-- returns what the handler needs to answer 404 (not visible) or 403 (not the user's) from that
-- one result. No earlier read decides, so no interleaving or other caller can separate them.

-- name: list
-- One row: the page's customers as the JSON array the API answers (`results`, written here
-- as `all_json` writes each customer, so the service passes it through instead of turning 100
-- rows into Python objects and back; `[]` for an empty page) and `total`. The statement is
-- config.customers_page (sql/privileges.sql), a plpgsql function, so that a super admin's
-- unfiltered page keeps one generic plan per connection instead of being planned anew with
-- the row-level policies expanded on every request (issue 23, bench/ANALYSIS.md); any other
-- page is planned for its values, as a statement here would be. There: the page is chosen
-- first (ordered by the unique name: an index scan), and only its rows get their `projects`
-- array; `total` is counted once, not carried through a window over every visible customer.
-- A user who sees every customer (all_orgs) and filters at most by origin gets it from
-- config.customer_count (a few rows of customer_counts instead of an index scan of every
-- customer): exactly count(*) of this statement's snapshot. Anyone else (the visible set
-- depends on the user's org and uuid) or a name filter: counted. The page and its count come
-- from this one statement, so they agree even in autocommit.
SELECT p.results, p.total
FROM config.customers_page(%(all_orgs)s::boolean, %(user_id)s::uuid, %(user_orgs)s::uuid[], %(name)s::text,
                           %(origin)s::text, %(limit)s::bigint, %(offset)s::bigint) p;

-- name: all_json
-- The plain (unpaginated) list, streamed (service.request.stream_list): one row per customer,
-- the JSON object the API writes for a Customer (the same fields, visibility and order as
-- `list`), so the service passes rows through instead of building 100,000 objects. The
-- projects arrays come from one grouped pass over the visible projects, hash-joined to the
-- customers and sorted once by name: 100,000 correlated ARRAY subqueries (an index probe and
-- a one-row sort each) cost twice as much (bench/ANALYSIS.md, "Full plain customers list").
-- array_agg keeps its input's order, which the grouped pass sorts by name (no per-group sort).
-- Times: config.api_time, as msgspec writes the datetimes psycopg reads.
WITH projects AS (
    SELECT s.customer_id, array_agg(s.uuid) AS uuids
    FROM (SELECT p.customer_id, p.uuid FROM config.projects p
          WHERE p.customer_id IS NOT NULL
            AND (%(all_orgs)s::boolean OR p.org_id = ANY (%(user_orgs)s::uuid[])) /* org visible */
            AND (%(name)s::text IS NULL  -- one named customer: only its projects
                 OR p.customer_id = (SELECT n.uuid FROM config.customers n WHERE n.name = %(name)s::text))
          ORDER BY p.customer_id, p.name, p.uuid) s
    GROUP BY s.customer_id
)
SELECT row_to_json(r)::text AS customer
FROM (
    SELECT c.uuid, c.name, c.description, c.origin, coalesce(g.uuids, '{}'::uuid[]) AS projects,
           config.api_time(c.created) AS created, config.api_time(c.modified) AS modified
    FROM config.customers c
    LEFT JOIN projects g ON g.customer_id = c.uuid
    WHERE (%(all_orgs)s::boolean OR c.created_by = %(user_id)s::uuid  -- customer visible
           OR EXISTS (SELECT 1 FROM config.projects p
                      WHERE p.customer_id = c.uuid AND p.org_id = ANY (%(user_orgs)s::uuid[])))
      AND (%(name)s::text IS NULL OR c.name = %(name)s::text)
      AND (%(origin)s::text IS NULL OR c.origin = %(origin)s::text)
    ORDER BY c.name, c.uuid
) r
ORDER BY r.name, r.uuid;

-- name: get
SELECT c.uuid, c.name, c.description, c.origin,
       ARRAY(SELECT p.uuid FROM config.projects p
             WHERE p.customer_id = c.uuid AND (%(all_orgs)s::boolean OR p.org_id = ANY (%(user_orgs)s::uuid[])) /* org visible */
             ORDER BY p.name, p.uuid) AS projects,
       c.created, c.modified
FROM config.customers c
WHERE c.uuid = %(customer_id)s::uuid
  AND (%(all_orgs)s::boolean OR c.created_by = %(user_id)s::uuid  -- customer visible
           OR EXISTS (SELECT 1 FROM config.projects v
                      WHERE v.customer_id = c.uuid AND v.org_id = ANY (%(user_orgs)s::uuid[])));

-- name: create
-- created_by defaults to config.current_user_id() (the request's hierarchy.user_id).
INSERT INTO config.customers (name, description, origin)
VALUES (%(name)s::text, %(description)s::text, 'manual')
RETURNING uuid;

-- name: update
-- No row: not visible (404). `mine` false: visible but not the user's to change (403), and
-- nothing changed. The user may change it when all_orgs or it created the customer.
WITH target AS (
    SELECT c.uuid, config.customer_mine(c.created_by, %(all_orgs)s::boolean, %(user_id)s::uuid) AS mine
    FROM config.customers c
    WHERE c.uuid = %(customer_id)s::uuid
      AND (%(all_orgs)s::boolean OR c.created_by = %(user_id)s::uuid  -- customer visible
           OR EXISTS (SELECT 1 FROM config.projects v
                      WHERE v.customer_id = c.uuid AND v.org_id = ANY (%(user_orgs)s::uuid[])))
), changed AS (
    UPDATE config.customers c SET
        name        = CASE WHEN %(set_name)s::boolean THEN %(name)s::text ELSE c.name END,
        description = CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE c.description END
    FROM target t
    WHERE c.uuid = t.uuid AND t.mine
    RETURNING c.uuid
)
SELECT t.uuid, t.mine FROM target t;

-- name: delete
-- As update: no row 404, `mine` false 403. Before 6.4 ON DELETE SET NULL orphans its
-- projects and the job re-homes them (rule 6); from 6.4 one holding projects is refused
-- (trigger customers_keep_projects, ON DELETE RESTRICT).
WITH target AS (
    SELECT c.uuid, config.customer_mine(c.created_by, %(all_orgs)s::boolean, %(user_id)s::uuid) AS mine
    FROM config.customers c
    WHERE c.uuid = %(customer_id)s::uuid
      AND (%(all_orgs)s::boolean OR c.created_by = %(user_id)s::uuid  -- customer visible
           OR EXISTS (SELECT 1 FROM config.projects v
                      WHERE v.customer_id = c.uuid AND v.org_id = ANY (%(user_orgs)s::uuid[])))
), gone AS (
    DELETE FROM config.customers c USING target t
    WHERE c.uuid = t.uuid AND t.mine
    RETURNING c.uuid
)
SELECT t.uuid, t.mine FROM target t;

-- name: add_projects
-- Moves the given projects to the customer, all or none: only when the customer is visible
-- and every project is one the user may move (its org's, or any with all_orgs). One row:
-- `customer_found` false is 404 for the customer, `missing_project` (the first, in request
-- order) 404 for that project; otherwise `projects` lists those that changed customer.
WITH customer AS (
    SELECT c.uuid
    FROM config.customers c
    WHERE c.uuid = %(customer_id)s::uuid
      AND (%(all_orgs)s::boolean OR c.created_by = %(user_id)s::uuid  -- customer visible
           OR EXISTS (SELECT 1 FROM config.projects v
                      WHERE v.customer_id = c.uuid AND v.org_id = ANY (%(user_orgs)s::uuid[])))
), missing AS (
    SELECT w.uuid
    FROM unnest(%(projects)s::uuid[]) WITH ORDINALITY AS w(uuid, ord)
    WHERE NOT EXISTS (SELECT 1 FROM config.projects p
                      WHERE p.uuid = w.uuid AND (%(all_orgs)s::boolean OR p.org_id = ANY (%(write_orgs)s::uuid[])) /* org writable */)
    ORDER BY w.ord
    LIMIT 1
), locked AS (
    -- in uuid order, so two calls on overlapping sets cannot deadlock
    SELECT p.uuid
    FROM config.projects p, customer c
    WHERE p.uuid = ANY (%(projects)s::uuid[])
      AND (%(all_orgs)s::boolean OR p.org_id = ANY (%(write_orgs)s::uuid[])) /* org writable */
      AND p.customer_id IS DISTINCT FROM c.uuid
      AND NOT EXISTS (SELECT 1 FROM missing)
    ORDER BY p.uuid
    FOR NO KEY UPDATE OF p
), moved AS (
    UPDATE config.projects p SET customer_id = c.uuid
    FROM customer c, locked l
    WHERE p.uuid = l.uuid AND p.customer_id IS DISTINCT FROM c.uuid
    RETURNING p.uuid
)
SELECT EXISTS (SELECT 1 FROM customer) AS customer_found,
       (SELECT m.uuid FROM missing m) AS missing_project,
       ARRAY(SELECT m.uuid FROM moved m) AS projects;

-- name: remove_projects
-- Orphans the given projects, all or none: only when the customer is visible, every project
-- is one the user may move, and every one belongs to this customer. One row: as add_projects,
-- plus `strangers`, the projects (request order) that belong to another customer or none
-- (409); otherwise `projects` lists those orphaned.
WITH customer AS (
    SELECT c.uuid
    FROM config.customers c
    WHERE c.uuid = %(customer_id)s::uuid
      AND (%(all_orgs)s::boolean OR c.created_by = %(user_id)s::uuid  -- customer visible
           OR EXISTS (SELECT 1 FROM config.projects v
                      WHERE v.customer_id = c.uuid AND v.org_id = ANY (%(user_orgs)s::uuid[])))
), wanted AS (
    SELECT w.uuid, min(w.ord) AS ord
    FROM unnest(%(projects)s::uuid[]) WITH ORDINALITY AS w(uuid, ord)
    GROUP BY w.uuid
), found AS (
    SELECT w.uuid, w.ord, p.uuid IS NOT NULL AS found, p.customer_id
    FROM wanted w
    LEFT JOIN config.projects p
           ON p.uuid = w.uuid AND (%(all_orgs)s::boolean OR p.org_id = ANY (%(write_orgs)s::uuid[])) /* org writable */
), refused AS (
    SELECT (SELECT f.uuid FROM found f WHERE NOT f.found ORDER BY f.ord LIMIT 1) AS missing_project,
           ARRAY(SELECT f.uuid FROM found f, customer c
                 WHERE f.found AND f.customer_id IS DISTINCT FROM c.uuid ORDER BY f.ord) AS strangers
), locked AS (
    -- in uuid order, as add_projects
    SELECT p.uuid
    FROM config.projects p, customer c, refused r
    WHERE p.uuid = ANY (%(projects)s::uuid[]) AND p.customer_id = c.uuid
      AND (%(all_orgs)s::boolean OR p.org_id = ANY (%(write_orgs)s::uuid[])) /* org writable */
      AND r.missing_project IS NULL AND cardinality(r.strangers) = 0
    ORDER BY p.uuid
    FOR NO KEY UPDATE OF p
), removed AS (
    UPDATE config.projects p SET customer_id = NULL
    FROM customer c, locked l
    WHERE p.uuid = l.uuid AND p.customer_id = c.uuid
    RETURNING p.uuid
)
SELECT EXISTS (SELECT 1 FROM customer) AS customer_found, r.missing_project, r.strangers,
       ARRAY(SELECT m.uuid FROM removed m) AS projects
FROM refused r;
