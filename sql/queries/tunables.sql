-- Tunables are cluster-wide; the tunables_validate trigger checks values (errcode 22023).

-- name: list
SELECT t.name, t.value, t.value_type, t.minimum, t.description, t.modified, t.modified_by,
       count(*) OVER () AS total
FROM config.tunables t
ORDER BY t.name
LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint;

-- name: get
SELECT t.name, t.value, t.value_type, t.minimum, t.description, t.modified, t.modified_by
FROM config.tunables t
WHERE t.name = %(name)s::text;

-- name: set
-- Changing the mode tunable runs the job in this transaction (rule 7, a trigger).
UPDATE config.tunables t SET value = %(value)s::jsonb
WHERE t.name = %(name)s::text
RETURNING t.name, t.value, t.value_type, t.minimum, t.description, t.modified, t.modified_by;
