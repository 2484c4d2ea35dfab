-- What the promotion in force did: the first p_limit rows of each list, with totals.
CREATE OR REPLACE FUNCTION config.promotion_report(p_limit integer DEFAULT 1000) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH orgs AS (
        SELECT o.name AS org, c.name AS customer, c.origin, po.created, s.name AS from_org,
               (SELECT count(*) FROM config.projects x WHERE x.org_id = po.org_id) AS projects
        FROM config.promoted_orgs po
        JOIN config.orgs o ON o.uuid = po.org_id
        JOIN config.customers c ON c.uuid = po.customer_id
        LEFT JOIN config.orgs s ON s.uuid = po.source_org
    ), moves AS (
        -- every project of a created org came from its source org (right after the promotion,
        -- as the dry run reads it; later, projects created since are listed too)
        SELECT p.name AS project, f.name AS from_org, t.name AS to_org
        FROM config.promoted_orgs po
        JOIN config.projects p ON p.org_id = po.org_id
        JOIN config.orgs f ON f.uuid = po.source_org
        JOIN config.orgs t ON t.uuid = po.org_id
        WHERE po.created
    ), members AS (
        SELECT u.email, o.name AS org, m.role, m.is_primary,
               b.user_id IS NULL AS added, coalesce(b.is_primary, false) AS was_primary
        FROM config.org_memberships m
        JOIN config.users u ON u.uuid = m.user_id
        JOIN config.orgs o ON o.uuid = m.org_id
        LEFT JOIN config.promotion_memberships b ON b.user_id = m.user_id AND b.org_id = m.org_id
        WHERE b.user_id IS NULL OR b.is_primary <> m.is_primary
    )
    SELECT jsonb_build_object(
        'orgs', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM orgs ORDER BY NOT created, org LIMIT p_limit) r), '[]'),
        'orgs_total', (SELECT count(*) FROM orgs),
        'moves', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM moves ORDER BY to_org, project LIMIT p_limit) r), '[]'),
        'moves_total', (SELECT count(*) FROM moves),
        'memberships', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM members ORDER BY lower(email), NOT is_primary, org LIMIT p_limit) r), '[]'),
        'memberships_total', (SELECT count(*) FROM members))
$$;
COMMENT ON FUNCTION config.promotion_report(integer) IS 'Release 6.4: what the promotion in force did, the first p_limit rows of each list with totals: orgs (created or mapped: name, customer, origin, from which org, projects), projects moved (from, to: every project of a created org, so right after it, as the dry run reads it, exactly the moves), memberships added or whose primary flag changed.';
