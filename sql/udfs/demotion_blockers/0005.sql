CREATE OR REPLACE FUNCTION config.demotion_blockers()
RETURNS TABLE (kind text, subject text, reason text, remedy text)
LANGUAGE sql STABLE AS $$
    SELECT service_state.require_request_permission('config.demotion_blockers', 'all_orgs');
    WITH mv AS MATERIALIZED (SELECT * FROM config.demotion_moves())
    SELECT 'no_org_to_return_to', o.name || '/' || mv.project_name,
           'the project was created after the promotion in an org whose customer held no project before it',
           'delete the project, or create it again in another org'
    FROM mv JOIN config.orgs o ON o.uuid = mv.from_org
    WHERE mv.to_org IS NULL
    UNION ALL
    SELECT 'project_name_clash', format('%s/%s', o.name, t.name),
           format('%s projects named %s would return to org %s', t.n, t.name, o.name),
           'rename all but one of them'
    FROM (SELECT d.org, d.name, count(*) AS n
          FROM (SELECT mv.to_org AS org, mv.project_name AS name FROM mv WHERE mv.to_org IS NOT NULL
                UNION ALL
                -- names are unique within an org: a clash needs a returning project, so only the
                -- projects of its name in its org (an index probe each), not the whole org
                SELECT p.org_id, p.name FROM config.projects p
                WHERE (p.org_id, p.name) IN (SELECT mv.to_org, mv.project_name FROM mv)) d
          GROUP BY d.org, d.name HAVING count(*) > 1) t
    JOIN config.orgs o ON o.uuid = t.org
    UNION ALL
    SELECT 'only_in_deleted_orgs', u.email,
           'the user belongs only to orgs the reversal deletes, none of which has an org to return to',
           'add the user to another org (hierarchy user add-org, or config.add_membership)'
    FROM config.users u
    WHERE NOT EXISTS (SELECT 1 FROM config.org_memberships m
                      LEFT JOIN config.promoted_orgs po ON po.org_id = m.org_id AND po.created
                      WHERE m.user_id = u.uuid AND (po.org_id IS NULL OR po.source_org IS NOT NULL))
    ORDER BY 1, 2
$$;
COMMENT ON FUNCTION config.demotion_blockers() IS 'Release 6.4, while promoted: what blocks the reversal, with the remedy: a project created after the promotion with no org to return to, projects of one name returning to one org, a user left with no org.';
