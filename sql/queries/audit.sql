-- The audit log, newest first. Without all_orgs a user sees: tunables (cluster-wide),
-- its orgs, projects of its orgs (current ones by uuid, deleted ones by the org_id
-- recorded in the row), users of its orgs and their memberships there, and the customers it
-- can see now or created. `list` is release 6.4's (memberships), `list_one_org` the form
-- before (users.org_id).

-- name: list
SELECT a.id, a.at, a.actor, a.action, a.object_type, a.object_id, a.changed, a.before, a.after,
       count(*) OVER () AS total
FROM config.audit_log a
WHERE (%(object_type)s::text IS NULL OR a.object_type = %(object_type)s::text)
  AND (%(object_id)s::uuid IS NULL OR a.object_id = %(object_id)s::uuid)
  AND (%(since)s::timestamptz IS NULL OR a.at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR a.at < %(until)s::timestamptz)
  AND (%(actor)s::text IS NULL OR a.actor = %(actor)s::text)
  AND (%(all_orgs)s::boolean
       OR a.object_type = 'tunables'
       OR (a.object_type = 'orgs' AND a.object_id = ANY (%(user_orgs)s::uuid[]))
       OR (a.object_type IN ('projects', 'users', 'org_memberships')
           AND (coalesce(a.after ->> 'org_id', a.before ->> 'org_id') = ANY (%(user_orgs)s::uuid[]::text[])
                OR EXISTS (SELECT 1 FROM config.projects p
                           WHERE a.object_type = 'projects' AND p.uuid = a.object_id
                             AND p.org_id = ANY (%(user_orgs)s::uuid[]))
                OR EXISTS (SELECT 1 FROM config.org_memberships m
                           WHERE a.object_type = 'users' AND m.user_id = a.object_id
                             AND m.org_id = ANY (%(user_orgs)s::uuid[]))))
       OR (a.object_type = 'customers'
           AND (coalesce(a.after ->> 'created_by', a.before ->> 'created_by') = %(user_id)s::text
                OR EXISTS (SELECT 1 FROM config.projects p
                           WHERE p.customer_id = a.object_id AND p.org_id = ANY (%(user_orgs)s::uuid[])))))
ORDER BY a.id DESC
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;

-- name: list_one_org
SELECT a.id, a.at, a.actor, a.action, a.object_type, a.object_id, a.changed, a.before, a.after,
       count(*) OVER () AS total
FROM config.audit_log a
WHERE (%(object_type)s::text IS NULL OR a.object_type = %(object_type)s::text)
  AND (%(object_id)s::uuid IS NULL OR a.object_id = %(object_id)s::uuid)
  AND (%(since)s::timestamptz IS NULL OR a.at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR a.at < %(until)s::timestamptz)
  AND (%(actor)s::text IS NULL OR a.actor = %(actor)s::text)
  AND (%(all_orgs)s::boolean
       OR a.object_type = 'tunables'
       OR (a.object_type = 'orgs' AND a.object_id = ANY (%(user_orgs)s::uuid[]))
       OR (a.object_type IN ('projects', 'users')
           AND (coalesce(a.after ->> 'org_id', a.before ->> 'org_id') = ANY (%(user_orgs)s::uuid[]::text[])
                OR EXISTS (SELECT 1 FROM config.projects p
                           WHERE a.object_type = 'projects' AND p.uuid = a.object_id
                             AND p.org_id = ANY (%(user_orgs)s::uuid[]))
                OR EXISTS (SELECT 1 FROM config.users u
                           WHERE a.object_type = 'users' AND u.uuid = a.object_id
                             AND u.org_id = ANY (%(user_orgs)s::uuid[]))))
       OR (a.object_type = 'customers'
           AND (coalesce(a.after ->> 'created_by', a.before ->> 'created_by') = %(user_id)s::text
                OR EXISTS (SELECT 1 FROM config.projects p
                           WHERE p.customer_id = a.object_id AND p.org_id = ANY (%(user_orgs)s::uuid[])))))
ORDER BY a.id DESC
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;
