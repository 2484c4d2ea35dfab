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
--                              config.promotion_projects, config.promotion_memberships
--   while promoted             trigger projects_org_is_customer_org: a project's org is the org
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

CREATE TABLE config.promoted_orgs (
    org_id       uuid PRIMARY KEY REFERENCES config.orgs (uuid) ON DELETE RESTRICT,
    customer_id  uuid NOT NULL UNIQUE REFERENCES config.customers (uuid) ON DELETE RESTRICT,
    promotion_id bigint NOT NULL REFERENCES config.org_promotions (id),
    created      boolean NOT NULL,
    source_org   uuid REFERENCES config.orgs (uuid) ON DELETE RESTRICT
);
COMMENT ON TABLE config.promoted_orgs IS 'Release 6.4, while promoted: the customer each org stands for (one each way). Its customer and org cannot be deleted while promoted; the reversal empties it.';
COMMENT ON COLUMN config.promoted_orgs.org_id IS 'The org.';
COMMENT ON COLUMN config.promoted_orgs.customer_id IS 'The customer it stands for.';
COMMENT ON COLUMN config.promoted_orgs.promotion_id IS 'The promotion that made the pair.';
COMMENT ON COLUMN config.promoted_orgs.created IS 'Whether the promotion created the org (the reversal deletes it) or mapped the customer to the org it already stood for (a default customer).';
COMMENT ON COLUMN config.promoted_orgs.source_org IS 'The org the customer''s projects were in before (the reversal returns the org''s projects there); NULL when the customer held none.';

CREATE TABLE config.promotion_projects (
    project_id   uuid PRIMARY KEY REFERENCES config.projects (uuid) ON DELETE CASCADE,
    promotion_id bigint NOT NULL REFERENCES config.org_promotions (id),
    from_org     uuid NOT NULL REFERENCES config.orgs (uuid) ON DELETE RESTRICT,
    to_org       uuid NOT NULL REFERENCES config.orgs (uuid) ON DELETE RESTRICT
);
COMMENT ON TABLE config.promotion_projects IS 'Release 6.4, while promoted: the projects the promotion moved, with the org each was in (before-images; the reversal empties it).';
COMMENT ON COLUMN config.promotion_projects.project_id IS 'The project moved (deleting it forgets the move).';
COMMENT ON COLUMN config.promotion_projects.promotion_id IS 'The promotion that moved it.';
COMMENT ON COLUMN config.promotion_projects.from_org IS 'Its org before the promotion (where the reversal returns it).';
COMMENT ON COLUMN config.promotion_projects.to_org IS 'The org the promotion moved it to.';

CREATE TABLE config.promotion_memberships (
    user_id      uuid NOT NULL REFERENCES config.users (uuid) ON DELETE CASCADE,
    org_id       uuid NOT NULL REFERENCES config.orgs (uuid) ON DELETE RESTRICT,
    promotion_id bigint NOT NULL REFERENCES config.org_promotions (id),
    role         text NOT NULL,
    is_primary   boolean NOT NULL,
    PRIMARY KEY (user_id, org_id)
);
CREATE INDEX promoted_orgs_source_idx ON config.promoted_orgs (source_org);
CREATE INDEX promotion_projects_from_idx ON config.promotion_projects (from_org);
CREATE INDEX promotion_projects_to_idx ON config.promotion_projects (to_org);
CREATE INDEX promotion_memberships_org_idx ON config.promotion_memberships (org_id);
COMMENT ON INDEX config.promoted_orgs_source_idx IS 'The orgs that received an org''s projects (and the foreign key check when an org is deleted).';
COMMENT ON INDEX config.promotion_projects_from_idx IS 'The foreign key check when an org is deleted.';
COMMENT ON INDEX config.promotion_projects_to_idx IS 'The foreign key check when an org is deleted.';
COMMENT ON INDEX config.promotion_memberships_org_idx IS 'The foreign key check when an org is deleted.';
COMMENT ON TABLE config.promotion_memberships IS 'Release 6.4, while promoted: every membership as it was before the promotion (before-images: the reversal restores each user''s primary org from it; it empties it).';
COMMENT ON COLUMN config.promotion_memberships.user_id IS 'The member.';
COMMENT ON COLUMN config.promotion_memberships.org_id IS 'The org it belonged to.';
COMMENT ON COLUMN config.promotion_memberships.promotion_id IS 'The promotion that recorded it.';
COMMENT ON COLUMN config.promotion_memberships.role IS 'Its role there.';
COMMENT ON COLUMN config.promotion_memberships.is_primary IS 'Whether it was the user''s primary org.';

\ir ../sql/udfs/promotion_in_force/0005.sql

CREATE OR REPLACE FUNCTION config.schema_migration() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0005.org-promotion'::text $$;
COMMENT ON FUNCTION config.schema_migration() IS 'The last migration applied (from 0004 on; absent: the first migration of config.schema_release()). Read by hierarchy migrate when a release spans several migrations.';

-- A user's memberships checked once per firing, not once per changed row (a promotion adds
-- thousands to one user): the 0004 version, made linear.
\ir ../sql/udfs/check_user_memberships/0005.sql

-- ---------------------------------------------------------------------------
-- While promoted: each project's org is its customer's org, whoever writes
-- ---------------------------------------------------------------------------

\ir ../sql/udfs/refuse_project_outside_customer_org/0005.sql

CREATE TRIGGER projects_org_is_customer_org BEFORE INSERT OR UPDATE OF org_id, customer_id ON config.projects
    FOR EACH ROW EXECUTE FUNCTION config.refuse_project_outside_customer_org();
ALTER TABLE config.projects ENABLE ALWAYS TRIGGER projects_org_is_customer_org;
COMMENT ON TRIGGER projects_org_is_customer_org ON config.projects IS 'Release 6.4, while promoted: a project''s org is the org its customer stands for (fires in replica mode too).';

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
