-- depends: 0004.org-memberships
-- Release 6.4, third migration: the promotion of customers to orgs (docs/design.md section 11,
-- docs/operators.md "Promote customers to orgs"). This adds what the operator's step needs; it
-- promotes nothing: `hierarchy orgs promote` (config.promote_customers) does, when asked.
--
-- Mapping (the rules, written once, in config.promotion_map and config.promote_now):
--   default customer           stands for its own org (default_for_org): no new org
--   every other customer       (system, project, manual) a new org named after the customer
--   projects                   each moves to the org its customer stands for
--   memberships                for each membership (org X, role R) a user had: role R in every
--                              new org that received projects from X; super admins unchanged
--   primary org                the current primary while it keeps a project; else the new org
--                              that received most of its projects (ties: the org name)
--
-- Rule map:
--   blockers (change nothing)  config.promotion_blockers, config.demotion_blockers
--   the step and its reversal  config.promote_customers, config.demote_orgs (dry_run: the same
--                              work rolled back, config.rolled_back)
--   what a promotion did       config.org_promotions, config.promoted_orgs,
--                              config.promotion_memberships
--   what it names is kept      triggers orgs_promotion_kept_*, customers_promotion_kept_*
--   while promoted             triggers projects_org_is_customer_org(_moves): a project's org is the org
--                              its customer stands for, whoever writes
--   downgrade refused          while promoted: the rollback raises HR062 (demote first)
--   lock order                 config.lock_for_promotion (docs/dba.md)

-- ---------------------------------------------------------------------------
-- What a promotion did, so its reversal restores the layout before it
-- ---------------------------------------------------------------------------

CREATE TABLE config.org_promotions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    promoted_at timestamptz NOT NULL DEFAULT now(),
    promoted_by text NOT NULL DEFAULT config.current_actor(),
    per_project boolean NOT NULL,
    demoted_at  timestamptz,
    demoted_by  text,
    summary     jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX org_promotions_one_active ON config.org_promotions ((true)) WHERE demoted_at IS NULL;
COMMENT ON TABLE config.org_promotions IS 'Release 6.4: every promotion of customers to orgs (config.promote_customers) and its reversal (config.demote_orgs); at most one is in force (demoted_at NULL).';
COMMENT ON COLUMN config.org_promotions.promoted_at IS 'When the promotion committed.';
COMMENT ON COLUMN config.org_promotions.promoted_by IS 'Who promoted (the audit actor).';
COMMENT ON COLUMN config.org_promotions.per_project IS 'The mode tunable at the time: true, a customer per project (multi-tenant); false, one default customer per org (single-tenant).';
COMMENT ON COLUMN config.org_promotions.demoted_at IS 'When the reversal committed; NULL while the promotion is in force.';
COMMENT ON COLUMN config.org_promotions.demoted_by IS 'Who reversed it.';
COMMENT ON COLUMN config.org_promotions.summary IS 'Counts: orgs created and mapped, projects moved, memberships added, primaries changed; and those of the reversal.';
COMMENT ON INDEX config.org_promotions_one_active IS 'At most one promotion in force.';

-- The bookkeeping carries no foreign key: each per-row check is an index probe and a row lock on
-- every one of the 100,000 rows a per-project promotion writes, and every org the reversal deletes
-- would probe each referencing column (bench/ANALYSIS.md). What they protected is held otherwise:
-- the values are written by the promotion's own statements from rows that exist (and are locked,
-- config.lock_for_promotion); the orgs and customers they name cannot be deleted (or change uuid)
-- while the promotion is in force: statement triggers *_promotion_kept below, one set-based check
-- per statement, no cost per row and none at all when not promoted. No table of moved projects:
-- while promoted each project of a created org was moved there from the org its customer's
-- projects were in (promoted_orgs.source_org; the blockers refuse a customer spanning orgs and a
-- default customer holding another org's projects) and stays there (projects_org_is_customer_org),
-- so the reversal's moves are derived (config.demotion_moves).
CREATE TABLE config.promoted_orgs (
    org_id       uuid PRIMARY KEY,
    customer_id  uuid NOT NULL UNIQUE,
    promotion_id bigint NOT NULL,
    created      boolean NOT NULL,
    source_org   uuid
);
COMMENT ON TABLE config.promoted_orgs IS 'Release 6.4, while promoted: the customer each org stands for (one each way), written by config.promote_now only. Its customer and orgs cannot be deleted while promoted (triggers customers_promotion_kept_*, orgs_promotion_kept_*; no foreign keys, bench/ANALYSIS.md); the reversal empties it.';
COMMENT ON COLUMN config.promoted_orgs.org_id IS 'The org.';
COMMENT ON COLUMN config.promoted_orgs.customer_id IS 'The customer it stands for.';
COMMENT ON COLUMN config.promoted_orgs.promotion_id IS 'The promotion that made the pair (the one in force: config.org_promotions.id).';
COMMENT ON COLUMN config.promoted_orgs.created IS 'Whether the promotion created the org (the reversal deletes it) or mapped the customer to the org it already stood for (a default customer).';
COMMENT ON COLUMN config.promoted_orgs.source_org IS 'The org the customer''s projects were in before (the promotion moved every one of them to org_id, the reversal returns the org''s projects there); NULL when the customer held none.';

CREATE TABLE config.promotion_memberships (
    user_id      uuid NOT NULL REFERENCES config.users (uuid) ON DELETE CASCADE,
    org_id       uuid NOT NULL,
    promotion_id bigint NOT NULL,
    role         text NOT NULL,
    is_primary   boolean NOT NULL,
    PRIMARY KEY (user_id, org_id)
);
CREATE INDEX promoted_orgs_source_idx ON config.promoted_orgs (source_org);
CREATE INDEX promotion_memberships_org_idx ON config.promotion_memberships (org_id);
COMMENT ON INDEX config.promoted_orgs_source_idx IS 'The orgs that received an org''s projects (and the check of orgs_promotion_kept_* when an org is deleted).';
COMMENT ON INDEX config.promotion_memberships_org_idx IS 'The check of orgs_promotion_kept_* when an org is deleted.';
COMMENT ON TABLE config.promotion_memberships IS 'Release 6.4, while promoted: every membership as it was before the promotion (before-images: the reversal restores each user''s primary org from it; it empties it). Its orgs cannot be deleted while promoted (triggers orgs_promotion_kept_*).';
COMMENT ON COLUMN config.promotion_memberships.user_id IS 'The member (deleting the user forgets it).';
COMMENT ON COLUMN config.promotion_memberships.org_id IS 'The org it belonged to.';
COMMENT ON COLUMN config.promotion_memberships.promotion_id IS 'The promotion that recorded it (the one in force: config.org_promotions.id).';
COMMENT ON COLUMN config.promotion_memberships.role IS 'Its role there.';
COMMENT ON COLUMN config.promotion_memberships.is_primary IS 'Whether it was the user''s primary org.';

\ir ../sql/udfs/promotion_in_force/0005.sql

CREATE OR REPLACE FUNCTION config.schema_migration() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0005.org-promotion'::text $$;
COMMENT ON FUNCTION config.schema_migration() IS 'The last migration applied (from 0004 on; absent: the first migration of config.schema_release()). Read by hierarchy migrate when a release spans several migrations.';

-- A user's memberships checked once per firing, not once per changed row (a promotion adds
-- thousands to one user): the 0004 version, made linear.
\ir ../sql/udfs/check_user_memberships/0005.sql

-- Deleting a membership that is not primary cannot break either rule (the primaries stay, the
-- count only falls): its event is not queued (a reversal deletes 300,000 such memberships, each
-- a deferred plpgsql call at commit). Every other delete, insert and update is checked as in 0004.
DROP TRIGGER org_memberships_checked ON config.org_memberships;
CREATE CONSTRAINT TRIGGER org_memberships_checked AFTER INSERT OR UPDATE ON config.org_memberships
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION config.check_user_memberships();
CREATE CONSTRAINT TRIGGER org_memberships_checked_delete AFTER DELETE ON config.org_memberships
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.is_primary) EXECUTE FUNCTION config.check_user_memberships();
COMMENT ON TRIGGER org_memberships_checked ON config.org_memberships IS 'At commit, for a membership added or changed: the member still has exactly one primary org, and a super admin one membership.';
COMMENT ON TRIGGER org_memberships_checked_delete ON config.org_memberships IS 'At commit, for a primary membership deleted: the member still has exactly one primary org (a non-primary one deleted cannot break either rule, so it is not queued).';

-- ---------------------------------------------------------------------------
-- While promoted: each project's org is its customer's org, whoever writes
-- ---------------------------------------------------------------------------

\ir ../sql/udfs/refuse_project_outside_customer_org/0005.sql

CREATE TRIGGER projects_org_is_customer_org BEFORE INSERT ON config.projects
    FOR EACH ROW EXECUTE FUNCTION config.refuse_project_outside_customer_org();
CREATE TRIGGER projects_org_is_customer_org_moves AFTER UPDATE ON config.projects
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.refuse_project_outside_customer_org();
ALTER TABLE config.projects ENABLE ALWAYS TRIGGER projects_org_is_customer_org;
ALTER TABLE config.projects ENABLE ALWAYS TRIGGER projects_org_is_customer_org_moves;
COMMENT ON TRIGGER projects_org_is_customer_org ON config.projects IS 'Release 6.4, while promoted: a project created is in the org its customer stands for (fires in replica mode too).';
COMMENT ON TRIGGER projects_org_is_customer_org_moves ON config.projects IS 'Release 6.4, while promoted: so is every project an UPDATE writes, checked once per statement (a promotion moves 100,000 in one; fires in replica mode too).';

-- While promoted: the orgs and customers the bookkeeping names stay (instead of foreign keys)
\ir ../sql/udfs/refuse_losing_promoted/0005.sql

CREATE TRIGGER orgs_promotion_kept_delete AFTER DELETE ON config.orgs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION config.refuse_losing_promoted();
CREATE TRIGGER orgs_promotion_kept_update AFTER UPDATE ON config.orgs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.refuse_losing_promoted();
CREATE TRIGGER customers_promotion_kept_delete AFTER DELETE ON config.customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION config.refuse_losing_promoted();
CREATE TRIGGER customers_promotion_kept_update AFTER UPDATE ON config.customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION config.refuse_losing_promoted();
ALTER TABLE config.orgs ENABLE ALWAYS TRIGGER orgs_promotion_kept_delete;
ALTER TABLE config.orgs ENABLE ALWAYS TRIGGER orgs_promotion_kept_update;
ALTER TABLE config.customers ENABLE ALWAYS TRIGGER customers_promotion_kept_delete;
ALTER TABLE config.customers ENABLE ALWAYS TRIGGER customers_promotion_kept_update;
COMMENT ON TRIGGER orgs_promotion_kept_delete ON config.orgs IS 'Release 6.4, while promoted: an org the promotion in force maps, returns projects to or recorded a membership in cannot be deleted (SQLSTATE 23503; one check per statement, fires in replica mode too).';
COMMENT ON TRIGGER orgs_promotion_kept_update ON config.orgs IS 'Release 6.4, while promoted: nor can its uuid change (SQLSTATE 23503).';
COMMENT ON TRIGGER customers_promotion_kept_delete ON config.customers IS 'Release 6.4, while promoted: a customer an org stands for cannot be deleted (SQLSTATE 23503; one check per statement, fires in replica mode too).';
COMMENT ON TRIGGER customers_promotion_kept_update ON config.customers IS 'Release 6.4, while promoted: nor can its uuid change (SQLSTATE 23503).';

-- ---------------------------------------------------------------------------
-- The mapping and what blocks it
-- ---------------------------------------------------------------------------

\ir ../sql/udfs/promotion_map/0005.sql

\ir ../sql/udfs/promotion_blockers/0005.sql

-- ---------------------------------------------------------------------------
-- Locks, and refusals naming the blockers
-- ---------------------------------------------------------------------------

\ir ../sql/udfs/lock_for_promotion/0005.sql

\ir ../sql/udfs/refuse_blocked/0005.sql

-- ---------------------------------------------------------------------------
-- The promotion
-- ---------------------------------------------------------------------------

\ir ../sql/udfs/promote_now/0005.sql

\ir ../sql/udfs/promotion_report/0005.sql

\ir ../sql/udfs/promote_customers/0005.sql

-- ---------------------------------------------------------------------------
-- The reversal
-- ---------------------------------------------------------------------------

\ir ../sql/udfs/demotion_moves/0005.sql

\ir ../sql/udfs/demotion_blockers/0005.sql

\ir ../sql/udfs/demote_now/0005.sql

\ir ../sql/udfs/demotion_report/0005.sql

\ir ../sql/udfs/demote_orgs/0005.sql
