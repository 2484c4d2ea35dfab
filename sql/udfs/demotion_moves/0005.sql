-- Where each project of a created org goes back to: the org it came from, or (created after
-- the promotion) the org its customer's projects came from.
CREATE OR REPLACE FUNCTION config.demotion_moves()
RETURNS TABLE (project_id uuid, project_name text, from_org uuid, to_org uuid)
LANGUAGE sql STABLE AS $$
    SELECT p.uuid, p.name, p.org_id, coalesce(pp.from_org, po.source_org)
    FROM config.promoted_orgs po
    JOIN config.projects p ON p.org_id = po.org_id
    LEFT JOIN config.promotion_projects pp ON pp.project_id = p.uuid
    WHERE po.created
$$;
COMMENT ON FUNCTION config.demotion_moves() IS 'Release 6.4, while promoted: the projects the reversal moves, from the org the promotion created to the org they came from (a project created after the promotion: the org its customer''s projects came from; NULL: none).';
