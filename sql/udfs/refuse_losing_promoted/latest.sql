-- What the promotion in force names stays while it is in force: one set-based check per statement
-- (instead of foreign keys on the bookkeeping, whose per-row checks cost every row it writes).
CREATE OR REPLACE FUNCTION config.refuse_losing_promoted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    lost text;
BEGIN
    IF config.promotion_in_force() IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'orgs' THEN
        IF TG_OP = 'DELETE' THEN
            SELECT string_agg(o.name, ', ' ORDER BY o.name) INTO lost FROM old_rows o
            WHERE EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.org_id = o.uuid)
               OR EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.source_org = o.uuid)
               OR EXISTS (SELECT 1 FROM config.promotion_memberships b WHERE b.org_id = o.uuid);
        ELSE
            SELECT string_agg(o.name, ', ' ORDER BY o.name) INTO lost FROM old_rows o
            WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.uuid = o.uuid)
              AND (EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.org_id = o.uuid)
                   OR EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.source_org = o.uuid)
                   OR EXISTS (SELECT 1 FROM config.promotion_memberships b WHERE b.org_id = o.uuid));
        END IF;
        IF lost IS NOT NULL THEN
            RAISE EXCEPTION 'org(s) % are part of the promotion in force (the org a customer stands for, the org its projects return to, or a membership the reversal restores): reverse it first with `hierarchy orgs demote`', lost
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'orgs_promotion_kept';
        END IF;
    ELSE
        IF TG_OP = 'DELETE' THEN
            SELECT string_agg(c.name, ', ' ORDER BY c.name) INTO lost FROM old_rows c
            WHERE EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.customer_id = c.uuid);
        ELSE
            SELECT string_agg(c.name, ', ' ORDER BY c.name) INTO lost FROM old_rows c
            WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.uuid = c.uuid)
              AND EXISTS (SELECT 1 FROM config.promoted_orgs po WHERE po.customer_id = c.uuid);
        END IF;
        IF lost IS NOT NULL THEN
            RAISE EXCEPTION 'customer(s) % stand for orgs while the customers are promoted: reverse the promotion first with `hierarchy orgs demote`', lost
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'customers_promotion_kept';
        END IF;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION config.refuse_losing_promoted() IS 'Release 6.4, while promoted: AFTER DELETE or UPDATE statement trigger on orgs and customers refusing to lose (delete, or change the uuid of) an org or customer the promotion in force names in config.promoted_orgs or config.promotion_memberships (SQLSTATE 23503, constraint orgs_promotion_kept or customers_promotion_kept). Nothing to check when not promoted.';
