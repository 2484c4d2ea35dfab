-- What the reversal in force would do, before doing it: the first p_limit rows with totals.
CREATE OR REPLACE FUNCTION config.demotion_report(p_limit integer DEFAULT 1000) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH moves AS (
        SELECT mv.project_name AS project, f.name AS from_org, t.name AS to_org
        FROM config.demotion_moves() mv
        JOIN config.orgs f ON f.uuid = mv.from_org
        LEFT JOIN config.orgs t ON t.uuid = mv.to_org
    ), orgs AS (
        SELECT o.name AS org, c.name AS customer, s.name AS to_org,
               (SELECT count(*) FROM config.projects x WHERE x.org_id = po.org_id) AS projects,
               (SELECT count(*) FROM config.org_memberships m WHERE m.org_id = po.org_id) AS members
        FROM config.promoted_orgs po
        JOIN config.orgs o ON o.uuid = po.org_id
        JOIN config.customers c ON c.uuid = po.customer_id
        LEFT JOIN config.orgs s ON s.uuid = po.source_org
        WHERE po.created
    )
    SELECT jsonb_build_object(
        'orgs', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM orgs ORDER BY org LIMIT p_limit) r), '[]'),
        'orgs_total', (SELECT count(*) FROM orgs),
        'moves', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM moves ORDER BY to_org, project LIMIT p_limit) r), '[]'),
        'moves_total', (SELECT count(*) FROM moves))
$$;
COMMENT ON FUNCTION config.demotion_report(integer) IS 'Release 6.4, while promoted: what the reversal would do, the first p_limit rows of each list with totals: the orgs it deletes (customer, members, projects, where they return) and the projects it moves (from, to).';
