-- Projects of an org. The request's token lookup first checks the org is visible
-- (auth.user_for_token's org_visible, as orgs.get decides: a user's orgs and all_orgs do not
-- change under a request) and takes the permissions of the user's role in that org, so these
-- statements only scope by the org in the path; `customer` is the customer's uuid, and a customer named in a body is checked in
-- the statement that writes it (create, update).

-- name: list
SELECT p.uuid, p.name, p.org_id AS org, p.description, p.settings, p.customer_id AS customer,
       p.created, p.modified, count(*) OVER () AS total
FROM config.projects p
WHERE p.org_id = %(org_id)s::uuid
  AND (%(isnull)s::boolean IS NULL OR (p.customer_id IS NULL) = %(isnull)s::boolean)
  AND (%(customer)s::uuid IS NULL OR p.customer_id = %(customer)s::uuid)
  AND (%(name)s::text IS NULL OR p.name = %(name)s::text)
ORDER BY p.name, p.uuid
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;

-- name: get
SELECT p.uuid, p.name, p.org_id AS org, p.description, p.settings, p.customer_id AS customer,
       p.created, p.modified
FROM config.projects p
WHERE p.org_id = %(org_id)s::uuid AND p.uuid = %(project_id)s::uuid;

-- name: create
-- A NULL customer lets the projects_assign_customer trigger choose one (rule 5). A customer
-- given must be one the user sees (customers.sql): otherwise nothing is inserted and
-- `unknown_customer` is true (409), in this one statement.
WITH refused AS (
    SELECT NOT (%(customer)s::uuid IS NULL  -- may name the customer: none, or one it sees
                OR EXISTS (SELECT 1 FROM config.customers c
                           WHERE c.uuid = %(customer)s::uuid
                             AND (%(all_orgs)s::boolean OR c.created_by = %(user_id)s::uuid
                                  OR EXISTS (SELECT 1 FROM config.projects v
                                             WHERE v.customer_id = c.uuid
                                               AND v.org_id = ANY (%(user_orgs)s::uuid[]))))) AS unknown_customer
), made AS (
    INSERT INTO config.projects (org_id, name, description, settings, customer_id)
    SELECT %(org_id)s::uuid, %(name)s::text, %(description)s::text,
           coalesce(%(settings)s::jsonb, '{}'::jsonb), %(customer)s::uuid
    FROM refused r
    WHERE NOT r.unknown_customer
    RETURNING uuid, name, org_id AS org, description, settings, customer_id AS customer, created, modified
)
SELECT r.unknown_customer, m.* FROM refused r LEFT JOIN made m ON true;

-- name: update
-- Each field changes only when its set_* flag is true (PATCH leaves absent fields alone;
-- an explicit null clears description or orphans the project). A customer given must be one
-- the user sees, as for create: `unknown_customer` (409) and nothing changed; no project
-- columns (uuid NULL): no such project in the org (404).
WITH refused AS (
    SELECT NOT (%(customer)s::uuid IS NULL  -- may name the customer: none, or one it sees
                OR EXISTS (SELECT 1 FROM config.customers c
                           WHERE c.uuid = %(customer)s::uuid
                             AND (%(all_orgs)s::boolean OR c.created_by = %(user_id)s::uuid
                                  OR EXISTS (SELECT 1 FROM config.projects v
                                             WHERE v.customer_id = c.uuid
                                               AND v.org_id = ANY (%(user_orgs)s::uuid[]))))) AS unknown_customer
), changed AS (
    UPDATE config.projects p SET
        name        = CASE WHEN %(set_name)s::boolean THEN %(name)s::text ELSE p.name END,
        description = CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE p.description END,
        settings    = CASE WHEN %(set_settings)s::boolean THEN %(settings)s::jsonb ELSE p.settings END,
        customer_id = CASE WHEN %(set_customer)s::boolean THEN %(customer)s::uuid ELSE p.customer_id END
    FROM refused r
    WHERE p.org_id = %(org_id)s::uuid AND p.uuid = %(project_id)s::uuid AND NOT r.unknown_customer
    RETURNING p.uuid, p.name, p.org_id AS org, p.description, p.settings, p.customer_id AS customer,
              p.created, p.modified
)
SELECT r.unknown_customer, c.* FROM refused r LEFT JOIN changed c ON true;

-- name: delete
DELETE FROM config.projects p
WHERE p.org_id = %(org_id)s::uuid AND p.uuid = %(project_id)s::uuid
RETURNING p.uuid;

-- name: list_v2
-- /config/v2/projects/: every project of the user's orgs (all_orgs: every project), each with
-- its org; the v2 API takes the org from the request body, not the path.
SELECT p.uuid, p.name, p.org_id AS org, p.description, p.settings, p.customer_id AS customer,
       p.created, p.modified, count(*) OVER () AS total
FROM config.projects p
WHERE (%(all_orgs)s::boolean OR p.org_id = ANY (%(user_orgs)s::uuid[]))
  AND (%(org)s::uuid IS NULL OR p.org_id = %(org)s::uuid)
  AND (%(name)s::text IS NULL OR p.name = %(name)s::text)
ORDER BY p.name, p.org_id, p.uuid
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;

-- name: get_v2
-- /config/v2/projects/{uuid}/: a project of the user's orgs (all_orgs: any project); none
-- (404) for another org's. A write then checks the role in the project's org (403) and runs
-- the v1 statement scoped by that org.
SELECT p.uuid, p.name, p.org_id AS org, p.description, p.settings, p.customer_id AS customer,
       p.created, p.modified
FROM config.projects p
WHERE p.uuid = %(project_id)s::uuid
  AND (%(all_orgs)s::boolean OR p.org_id = ANY (%(user_orgs)s::uuid[]));

-- name: org_stands_for_customer
-- Release 6.4 (migrations/0005): whether the org stands for a customer while the customers are
-- promoted to orgs (the reversal empties config.promoted_orgs): a project created in it without
-- a customer gets that one (config.refuse_project_outside_customer_org), so the projects'
-- OPTIONS metadata says `customer` is not required there.
SELECT EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.org_id = %(org_id)s::uuid) AS stands;
