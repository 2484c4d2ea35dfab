CREATE OR REPLACE FUNCTION config.promotion_blockers()
RETURNS TABLE (kind text, subject text, reason text, remedy text)
LANGUAGE sql STABLE AS $$
    SELECT service_state.require_request_permission('config.promotion_blockers', 'all_orgs');
    WITH m AS MATERIALIZED (SELECT * FROM config.promotion_map())
    SELECT 'orphan', o.name || '/' || p.name, 'project has no customer',
           'give it a customer (release 6.4 cannot have orphans; this database was changed by hand)'
    FROM config.projects p JOIN config.orgs o ON o.uuid = p.org_id
    WHERE p.customer_id IS NULL
    UNION ALL
    SELECT 'customer_spans_orgs', m.customer_name,
           format('its %s projects lie in %s orgs (%s): promoting it would let one org''s users see another''s projects',
                  m.projects, m.source_orgs,
                  (SELECT string_agg(DISTINCT o.name, ', ') FROM config.projects x JOIN config.orgs o ON o.uuid = x.org_id
                   WHERE x.customer_id = m.customer_id)),
           'regroup them so each customer holds the projects of one org (downgrade with `hierarchy migrate --to 6.1`, move them with `customers ... remove_projects/add_projects`, upgrade again)'
    FROM m WHERE m.source_orgs > 1
    UNION ALL
    SELECT 'default_customer_elsewhere', m.customer_name,
           format('default customer of org %s holds projects of org %s', m.org_name,
                  (SELECT o.name FROM config.orgs o WHERE o.uuid = m.source_org)),
           'regroup its projects under a customer of their own org (downgrade to 6.1 to regroup)'
    FROM m WHERE NOT m.creates AND m.source_orgs = 1 AND m.source_org IS DISTINCT FROM m.org_id
    UNION ALL
    SELECT 'org_name_invalid', m.customer_name,
           'the customer''s name is not a valid org name (1 to 255 characters: letters, digits, _ . -; starts with a letter or digit)',
           'rename the customer (PATCH /config/v1/customers/{uuid}/ {"name": ...})'
    FROM m WHERE m.creates AND NOT (m.org_name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$' AND length(m.org_name) <= 255)
    UNION ALL
    SELECT 'org_name_taken', m.customer_name,
           format('the new org''s name %s is taken by another org', m.org_name),
           'rename the customer or the org'
    FROM m WHERE m.creates AND EXISTS (SELECT 1 FROM config.orgs o WHERE o.name = m.org_name)
    UNION ALL
    SELECT 'project_name_clash', format('%s/%s', t.org_name, t.name),
           format('%s projects named %s would land in org %s', t.n, t.name, t.org_name),
           'rename all but one of them'
    FROM (SELECT m.org_name, x.name, count(*) AS n
          FROM config.projects x JOIN m ON m.customer_id = x.customer_id
          -- names are unique within an org (projects_org_name_unique), so projects of one name
          -- meet in an org only from a customer spanning orgs or from two customers landing in
          -- one org: read those customers' projects only (an index probe each), not every project
          WHERE m.source_orgs > 1
             OR m.org_name IN (SELECT m2.org_name FROM m m2 GROUP BY m2.org_name HAVING count(*) > 1)
          GROUP BY m.org_name, x.name HAVING count(*) > 1) t
    ORDER BY 1, 2
$$;
COMMENT ON FUNCTION config.promotion_blockers() IS 'Release 6.4: what blocks the promotion of customers to orgs, with the remedy: orphans, a customer whose projects lie in several orgs, a default customer holding another org''s projects, a customer name that is not a valid org name or is another org''s, projects of one name landing in one org. Empty: config.promote_customers may run. (No primary-org blocker: a user''s primary is always decided, docs/design.md.)';
