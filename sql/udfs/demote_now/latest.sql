CREATE OR REPLACE FUNCTION config.demote_now() RETURNS jsonb
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    promo     bigint := config.promotion_in_force();
    moved     integer;
    added     integer;
    primaries integer;
    removed   integer;
    deleted   integer;
    counts    jsonb;
BEGIN
    -- first: the promotion ends, so the projects may leave the orgs their customers stand for
    UPDATE config.org_promotions p SET demoted_at = now(), demoted_by = config.current_actor() WHERE p.id = promo;

    CREATE TEMP TABLE demotion_orgs ON COMMIT DROP AS
    SELECT po.org_id, po.source_org FROM config.promoted_orgs po WHERE po.created;

    -- the moves of config.demotion_moves, written as one join (joined back to the projects by
    -- uuid, the planner reads every project even when a handful move)
    UPDATE config.projects p SET org_id = po.source_org
    FROM config.promoted_orgs po WHERE po.created AND p.org_id = po.org_id;
    GET DIAGNOSTICS moved = ROW_COUNT;

    -- a membership in a deleted org becomes one in the org its projects return to, unless the
    -- user already belongs there (that membership and its role stay)
    INSERT INTO config.org_memberships (user_id, org_id, role, is_primary)
    SELECT DISTINCT ON (m.user_id, d.source_org) m.user_id, d.source_org, m.role, false
    FROM config.org_memberships m JOIN demotion_orgs d ON d.org_id = m.org_id
    WHERE d.source_org IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM config.org_memberships k WHERE k.user_id = m.user_id AND k.org_id = d.source_org)
    ORDER BY m.user_id, d.source_org, m.is_primary DESC, m.role;
    GET DIAGNOSTICS added = ROW_COUNT;

    -- a primary in a deleted org: the primary before the promotion when the user still belongs
    -- there, else the org its projects return to, else its oldest remaining membership
    CREATE TEMP TABLE demotion_primaries ON COMMIT DROP AS
    SELECT m.user_id, m.org_id AS old_primary,
           coalesce((SELECT b.org_id FROM config.promotion_memberships b
                     JOIN config.org_memberships k ON k.user_id = b.user_id AND k.org_id = b.org_id
                     WHERE b.user_id = m.user_id AND b.is_primary
                       AND b.org_id NOT IN (SELECT d2.org_id FROM demotion_orgs d2)),
                    d.source_org,
                    (SELECT k.org_id FROM config.org_memberships k JOIN config.orgs o ON o.uuid = k.org_id
                     WHERE k.user_id = m.user_id AND k.org_id NOT IN (SELECT d2.org_id FROM demotion_orgs d2)
                     ORDER BY k.created, o.name LIMIT 1)) AS new_primary
    FROM config.org_memberships m JOIN demotion_orgs d ON d.org_id = m.org_id
    WHERE m.is_primary;
    UPDATE config.org_memberships m SET is_primary = false
    FROM demotion_primaries d WHERE m.user_id = d.user_id AND m.org_id = d.old_primary;
    UPDATE config.org_memberships m SET is_primary = true
    FROM demotion_primaries d WHERE m.user_id = d.user_id AND m.org_id = d.new_primary;
    GET DIAGNOSTICS primaries = ROW_COUNT;

    DELETE FROM config.org_memberships m USING demotion_orgs d WHERE m.org_id = d.org_id;
    GET DIAGNOSTICS removed = ROW_COUNT;

    DELETE FROM config.promotion_memberships b WHERE b.promotion_id = promo;
    DELETE FROM config.promoted_orgs po WHERE po.promotion_id = promo;
    DELETE FROM config.orgs o USING demotion_orgs d WHERE o.uuid = d.org_id;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    DROP TABLE demotion_orgs, demotion_primaries;

    counts := jsonb_build_object('promotion', promo, 'projects_moved', moved, 'memberships_added', added,
                                 'primaries_changed', primaries, 'memberships_removed', removed,
                                 'orgs_deleted', deleted);
    UPDATE config.org_promotions p SET summary = p.summary || jsonb_build_object('demotion', counts) WHERE p.id = promo;
    RETURN counts;
END
$$;
COMMENT ON FUNCTION config.demote_now() IS 'Release 6.4: the reversal''s work, once locked and checked (call config.demote_orgs): ends the promotion, returns the projects of the created orgs, maps their memberships back, restores primaries, deletes the created orgs; returns the counts.';
