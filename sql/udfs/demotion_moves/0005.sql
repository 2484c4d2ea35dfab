-- Where each project of a created org goes back to: the org its customer's projects came from
-- (the promotion moved every one of them from there; one created after it goes there too).
CREATE OR REPLACE FUNCTION config.demotion_moves()
RETURNS TABLE (project_id uuid, project_name text, from_org uuid, to_org uuid)
LANGUAGE sql STABLE AS $$
    SELECT p.uuid, p.name, p.org_id, po.source_org
    FROM config.promoted_orgs po
    JOIN config.projects p ON p.org_id = po.org_id
    WHERE po.created
$$;
COMMENT ON FUNCTION config.demotion_moves() IS 'Release 6.4, while promoted: the projects the reversal moves, from the org the promotion created to the org its customer''s projects came from (promoted_orgs.source_org: where the promotion moved each from; a project created after the promotion goes there too; NULL: none).';
