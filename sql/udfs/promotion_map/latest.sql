-- One row per customer: the org it would stand for, and where its projects are now.
CREATE OR REPLACE FUNCTION config.promotion_map()
RETURNS TABLE (customer_id uuid, customer_name text, origin text, creates boolean, org_id uuid,
               org_name text, source_org uuid, source_orgs integer, projects bigint)
LANGUAGE sql STABLE AS $$
    SELECT c.uuid, c.name, c.origin, c.origin <> 'default',
           CASE WHEN c.origin = 'default' THEN c.default_for_org END,
           CASE WHEN c.origin = 'default' THEN d.name ELSE c.name END,
           p.orgs[1], coalesce(cardinality(p.orgs), 0), coalesce(p.projects, 0)
    FROM config.customers c
    LEFT JOIN config.orgs d ON d.uuid = c.default_for_org
    LEFT JOIN (SELECT x.customer_id, array_agg(DISTINCT x.org_id) AS orgs, count(*) AS projects
               FROM config.projects x GROUP BY x.customer_id) p ON p.customer_id = c.uuid
$$;
COMMENT ON FUNCTION config.promotion_map() IS 'Release 6.4: the promotion''s mapping, one row per customer: whether it creates an org (every customer but a default one) and its name (the customer''s; a default customer stands for its own org), and the orgs its projects are in now (source_org when one).';
