-- The work, after the locks and checks (config.promote_customers): returns the counts.
CREATE OR REPLACE FUNCTION config.promote_now(p_report boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    promo    bigint;
    mapped   integer;
    made     integer;
    moved    integer;
    added    integer;
    primaries integer;
    counts   jsonb;
BEGIN
    INSERT INTO config.org_promotions (per_project) VALUES (config.per_project_mode()) RETURNING id INTO promo;

    -- the orgs, and what each stands for
    WITH m AS MATERIALIZED (
        SELECT x.*, CASE WHEN x.creates THEN gen_random_uuid() ELSE x.org_id END AS target
        FROM config.promotion_map() x
    ), created AS (
        INSERT INTO config.orgs (uuid, name) SELECT m.target, m.org_name FROM m WHERE m.creates RETURNING 1
    ), stands AS (
        INSERT INTO config.promoted_orgs (org_id, customer_id, promotion_id, created, source_org)
        SELECT m.target, m.customer_id, promo, m.creates, m.source_org FROM m
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM created), (SELECT count(*) FROM stands) INTO made, mapped;
    -- its size decides the plans below: a few rows (single mode) probe the projects of the
    -- created orgs through their indexes, many (per-project) hash them; unanalysed, the planner
    -- guesses and reads every project either way
    ANALYZE config.promoted_orgs;

    -- the memberships as they were
    INSERT INTO config.promotion_memberships (user_id, org_id, promotion_id, role, is_primary)
    SELECT m.user_id, m.org_id, promo, m.role, m.is_primary FROM config.org_memberships m;

    -- each project into the org its customer stands for: only created orgs receive any (the
    -- blockers refuse a default customer holding another org's projects), every project of a
    -- created org comes from its source_org (they refuse a customer spanning orgs), so the move
    -- is its own record (config.demotion_moves)
    UPDATE config.projects p SET org_id = po.org_id
    FROM config.promoted_orgs po
    WHERE po.created AND po.customer_id = p.customer_id AND p.org_id <> po.org_id;
    GET DIAGNOSTICS moved = ROW_COUNT;

    -- role R in org X: role R in every new org that received X's projects (super admins see
    -- every org already and keep their one membership)
    INSERT INTO config.org_memberships (user_id, org_id, role, is_primary)
    SELECT b.user_id, po.org_id, b.role, false
    FROM config.promotion_memberships b
    JOIN config.promoted_orgs po ON po.created AND po.source_org = b.org_id
    WHERE NOT config.role_sees_every_org(b.role);
    GET DIAGNOSTICS added = ROW_COUNT;

    -- a primary org left without projects: the new org that received most of them (ties: name)
    CREATE TEMP TABLE promotion_primaries ON COMMIT DROP AS
    SELECT b.user_id, b.org_id AS old_primary, s.org_id AS new_primary
    FROM config.promotion_memberships b
    JOIN (SELECT DISTINCT ON (po.source_org) po.source_org, po.org_id
          FROM config.promoted_orgs po
          JOIN config.orgs o ON o.uuid = po.org_id
          JOIN (SELECT x.org_id, count(*) AS n FROM config.projects x
                WHERE x.org_id IN (SELECT y.org_id FROM config.promoted_orgs y WHERE y.created)
                GROUP BY x.org_id) c ON c.org_id = po.org_id
          WHERE po.created AND po.source_org IS NOT NULL
          ORDER BY po.source_org, c.n DESC, o.name) s
      ON s.source_org = b.org_id
    WHERE b.is_primary AND NOT config.role_sees_every_org(b.role)
      AND NOT EXISTS (SELECT 1 FROM config.projects x WHERE x.org_id = b.org_id);
    UPDATE config.org_memberships m SET is_primary = false
    FROM promotion_primaries d WHERE m.user_id = d.user_id AND m.org_id = d.old_primary;
    UPDATE config.org_memberships m SET is_primary = true
    FROM promotion_primaries d WHERE m.user_id = d.user_id AND m.org_id = d.new_primary;
    GET DIAGNOSTICS primaries = ROW_COUNT;
    DROP TABLE promotion_primaries;

    counts := jsonb_build_object('promotion', promo, 'orgs_created', made, 'orgs_mapped', mapped - made,
                                 'projects_moved', moved, 'memberships_added', added,
                                 'primaries_changed', primaries);
    UPDATE config.org_promotions p SET summary = counts WHERE p.id = promo;
    IF p_report THEN
        counts := counts || jsonb_build_object('plan', config.promotion_report());
    END IF;
    RETURN counts;
END
$$;
COMMENT ON FUNCTION config.promote_now(boolean) IS 'Release 6.4: the promotion''s work, once locked and checked (call config.promote_customers): creates and maps the orgs, records the memberships'' before-images, moves the projects, adds the memberships and moves primaries; returns the counts (p_report: and what it did, config.promotion_report).';
