-- Down from 0005 (release 6.4 with the promotion's schema) to 0004 (6.4 with memberships).
-- Refused, changing nothing, while a promotion is in force: its orgs, moves and memberships
-- would stay without the record that reverses them (run `hierarchy orgs demote` first); and
-- while a user belongs to several orgs, which 0004's rollback refuses next (HR061, the same
-- message), so a refused downgrade to 6.1 leaves the database at 0005.
-- Not kept: config.org_promotions, the history of promotions already reversed (their changes
-- stay in audit_log).

LOCK TABLE config.projects IN EXCLUSIVE MODE;
LOCK TABLE config.org_promotions IN ACCESS EXCLUSIVE MODE;

DO $$
DECLARE
    since timestamptz;
BEGIN
    SELECT p.promoted_at INTO since FROM config.org_promotions p WHERE p.demoted_at IS NULL;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot downgrade below the org promotion: the customers are promoted to orgs (since %); reverse it first with `hierarchy orgs demote` (or SELECT config.demote_orgs()), then downgrade again',
            to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
            USING ERRCODE = 'HR062';
    END IF;
    -- the next step down (0004's rollback) refuses while a user belongs to several orgs: refuse
    -- here already, so a refused downgrade changes nothing at all
    IF EXISTS (SELECT 1 FROM config.downgrade_blockers()) THEN
        RAISE EXCEPTION 'cannot downgrade below org memberships: % user(s) belong to several orgs and release 6.1 has one org per user: %; remove each from every org but its primary (`hierarchy user remove-org EMAIL --org NAME`), then downgrade again',
            (SELECT count(*) FROM config.downgrade_blockers()),
            (SELECT string_agg(format('%s (%s)', d.email, array_to_string(d.orgs, ', ')), '; ')
             FROM (SELECT * FROM config.downgrade_blockers() LIMIT 5) d)
            USING ERRCODE = 'HR061', DETAIL = 'SELECT * FROM config.downgrade_blockers() lists every one.';
    END IF;
END
$$;

\ir ../sql/udfs/check_user_memberships/0004.sql

DROP TRIGGER org_memberships_checked_delete ON config.org_memberships;
DROP TRIGGER org_memberships_checked ON config.org_memberships;
CREATE CONSTRAINT TRIGGER org_memberships_checked AFTER INSERT OR UPDATE OR DELETE ON config.org_memberships
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION config.check_user_memberships();
COMMENT ON TRIGGER org_memberships_checked ON config.org_memberships IS 'At commit: the member still has exactly one primary org, and a super admin one membership.';

DROP FUNCTION config.demote_orgs(boolean);
DROP FUNCTION config.demotion_report(integer);
DROP FUNCTION config.demote_now();
DROP FUNCTION config.demotion_blockers();
DROP FUNCTION config.demotion_moves();
DROP FUNCTION config.promote_customers(boolean);
DROP FUNCTION config.promotion_report(integer);
DROP FUNCTION config.promote_now(boolean);
DROP FUNCTION config.refuse_blocked(text, text, jsonb);
DROP FUNCTION config.lock_for_promotion();
DROP FUNCTION config.promotion_blockers();
DROP FUNCTION config.promotion_map();
DROP TRIGGER customers_promotion_kept_update ON config.customers;
DROP TRIGGER customers_promotion_kept_delete ON config.customers;
DROP TRIGGER orgs_promotion_kept_update ON config.orgs;
DROP TRIGGER orgs_promotion_kept_delete ON config.orgs;
DROP FUNCTION config.refuse_losing_promoted();
DROP TRIGGER projects_org_is_customer_org_moves ON config.projects;
DROP TRIGGER projects_org_is_customer_org ON config.projects;
DROP FUNCTION config.refuse_project_outside_customer_org();
DROP FUNCTION config.promotion_in_force();
DROP TABLE config.promotion_memberships;
DROP TABLE config.promoted_orgs;
DROP TABLE config.org_promotions;

CREATE OR REPLACE FUNCTION config.schema_migration() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0004.org-memberships'::text $$;
COMMENT ON FUNCTION config.schema_migration() IS 'The last migration applied (from 0004 on; absent: the first migration of config.schema_release()). Read by hierarchy migrate when a release spans several migrations.';
