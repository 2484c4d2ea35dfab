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
COMMENT ON TABLE config.promotion_memberships IS 'Release 6.4, while promoted: every membership as it was before the promotion (before-images: the reversal restores each user''s primary org from it; it empties it).';
COMMENT ON COLUMN config.promotion_memberships.user_id IS 'The member.';
COMMENT ON COLUMN config.promotion_memberships.org_id IS 'The org it belonged to.';
COMMENT ON COLUMN config.promotion_memberships.promotion_id IS 'The promotion that recorded it.';
COMMENT ON COLUMN config.promotion_memberships.role IS 'Its role there.';
COMMENT ON COLUMN config.promotion_memberships.is_primary IS 'Whether it was the user''s primary org.';

CREATE FUNCTION config.promotion_in_force() RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT p.id FROM config.org_promotions p WHERE p.demoted_at IS NULL $$;
COMMENT ON FUNCTION config.promotion_in_force() IS 'Release 6.4: the id of the promotion in force, NULL when the customers are not promoted.';

CREATE OR REPLACE FUNCTION config.schema_migration() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0005.org-promotion'::text $$;
COMMENT ON FUNCTION config.schema_migration() IS 'The last migration applied (from 0004 on; absent: the first migration of config.schema_release()). Read by hierarchy migrate when a release spans several migrations.';

-- ---------------------------------------------------------------------------
-- While promoted: each project's org is its customer's org, whoever writes
-- ---------------------------------------------------------------------------

CREATE FUNCTION config.refuse_project_outside_customer_org() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    stands uuid;
BEGIN
    IF config.promotion_in_force() IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT po.org_id INTO stands FROM config.promoted_orgs po WHERE po.customer_id = NEW.customer_id;
    IF stands IS DISTINCT FROM NEW.org_id THEN
        RAISE EXCEPTION 'project % must be in the org its customer % stands for (%): the customers are promoted to orgs',
            NEW.name, (SELECT c.name FROM config.customers c WHERE c.uuid = NEW.customer_id),
            coalesce((SELECT o.name FROM config.orgs o WHERE o.uuid = stands), 'none: it was created after the promotion')
            USING ERRCODE = 'check_violation', CONSTRAINT = 'projects_org_is_customer_org', COLUMN = 'customer_id',
                  HINT = 'Name the customer the project''s org stands for (GET /config/v1/orgs/{org} shows it).';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION config.refuse_project_outside_customer_org() IS 'Release 6.4, while promoted: BEFORE INSERT OR UPDATE trigger refusing a project whose org is not the org its customer stands for (SQLSTATE 23514, constraint projects_org_is_customer_org).';

CREATE TRIGGER projects_org_is_customer_org BEFORE INSERT OR UPDATE OF org_id, customer_id ON config.projects
    FOR EACH ROW EXECUTE FUNCTION config.refuse_project_outside_customer_org();
ALTER TABLE config.projects ENABLE ALWAYS TRIGGER projects_org_is_customer_org;
COMMENT ON TRIGGER projects_org_is_customer_org ON config.projects IS 'Release 6.4, while promoted: a project''s org is the org its customer stands for (fires in replica mode too).';

-- ---------------------------------------------------------------------------
-- The mapping and what blocks it
-- ---------------------------------------------------------------------------

-- One row per customer: the org it would stand for, and where its projects are now.
CREATE FUNCTION config.promotion_map()
RETURNS TABLE (customer_id uuid, customer_name text, origin text, creates boolean, org_id uuid,
               org_name text, source_org uuid, source_orgs integer, projects bigint)
LANGUAGE sql STABLE AS $$
    SELECT c.uuid, c.name, c.origin, c.origin <> 'default',
           CASE WHEN c.origin = 'default' THEN c.default_for_org END,
           CASE WHEN c.origin = 'default' THEN d.name ELSE c.name END,
           p.orgs[1], coalesce(cardinality(p.orgs), 0), coalesce(p.projects, 0)
    FROM config.customers c
    LEFT JOIN config.orgs d ON d.uuid = c.default_for_org
    LEFT JOIN (SELECT x.customer_id, array_agg(DISTINCT x.org_id) AS orgs, count(*) AS projects
               FROM config.projects x GROUP BY x.customer_id) p ON p.customer_id = c.uuid
$$;
COMMENT ON FUNCTION config.promotion_map() IS 'Release 6.4: the promotion''s mapping, one row per customer: whether it creates an org (every customer but a default one) and its name (the customer''s; a default customer stands for its own org), and the orgs its projects are in now (source_org when one).';

CREATE FUNCTION config.promotion_blockers()
RETURNS TABLE (kind text, subject text, reason text, remedy text)
LANGUAGE sql STABLE AS $$
    WITH m AS MATERIALIZED (SELECT * FROM config.promotion_map())
    SELECT 'orphan', o.name || '/' || p.name, 'project has no customer',
           'give it a customer (release 6.4 cannot have orphans; this database was changed by hand)'
    FROM config.projects p JOIN config.orgs o ON o.uuid = p.org_id
    WHERE p.customer_id IS NULL
    UNION ALL
    SELECT 'customer_spans_orgs', m.customer_name,
           format('its %s projects lie in %s orgs (%s): promoting it would let one org''s users see another''s projects',
                  m.projects, m.source_orgs,
                  (SELECT string_agg(DISTINCT o.name, ', ') FROM config.projects x JOIN config.orgs o ON o.uuid = x.org_id
                   WHERE x.customer_id = m.customer_id)),
           'regroup them so each customer holds the projects of one org (downgrade with `hierarchy migrate --to 6.1`, move them with `customers ... remove_projects/add_projects`, upgrade again)'
    FROM m WHERE m.source_orgs > 1
    UNION ALL
    SELECT 'default_customer_elsewhere', m.customer_name,
           format('default customer of org %s holds projects of org %s', m.org_name,
                  (SELECT o.name FROM config.orgs o WHERE o.uuid = m.source_org)),
           'regroup its projects under a customer of their own org (downgrade to 6.1 to regroup)'
    FROM m WHERE NOT m.creates AND m.source_orgs = 1 AND m.source_org IS DISTINCT FROM m.org_id
    UNION ALL
    SELECT 'org_name_invalid', m.customer_name,
           'the customer''s name is not a valid org name (1 to 255 characters: letters, digits, _ . -; starts with a letter or digit)',
           'rename the customer (PATCH /config/v1/customers/{uuid}/ {"name": ...})'
    FROM m WHERE m.creates AND NOT (m.org_name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$' AND length(m.org_name) <= 255)
    UNION ALL
    SELECT 'org_name_taken', m.customer_name,
           format('the new org''s name %s is taken by another org', m.org_name),
           'rename the customer or the org'
    FROM m WHERE m.creates AND EXISTS (SELECT 1 FROM config.orgs o WHERE o.name = m.org_name)
    UNION ALL
    SELECT 'project_name_clash', format('%s/%s', t.org_name, t.name),
           format('%s projects named %s would land in org %s', t.n, t.name, t.org_name),
           'rename all but one of them'
    FROM (SELECT m.org_name, x.name, count(*) AS n
          FROM config.projects x JOIN m ON m.customer_id = x.customer_id
          GROUP BY m.org_name, x.name HAVING count(*) > 1) t
    ORDER BY 1, 2
$$;
COMMENT ON FUNCTION config.promotion_blockers() IS 'Release 6.4: what blocks the promotion of customers to orgs, with the remedy: orphans, a customer whose projects lie in several orgs, a default customer holding another org''s projects, a customer name that is not a valid org name or is another org''s, projects of one name landing in one org. Empty: config.promote_customers may run. (No primary-org blocker: a user''s primary is always decided, docs/design.md.)';

-- ---------------------------------------------------------------------------
-- Locks, and refusals naming the blockers
-- ---------------------------------------------------------------------------

-- The lock order of docs/dba.md: the projects table (every create or move waits), the
-- customer rows in uuid order (no rename or delete under the mapping), then the memberships
-- (every membership change waits) and the org names.
CREATE FUNCTION config.lock_for_promotion() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE config.projects IN EXCLUSIVE MODE;
    PERFORM 1 FROM config.customers c ORDER BY c.uuid FOR NO KEY UPDATE;
    LOCK TABLE config.org_memberships IN EXCLUSIVE MODE;
    LOCK TABLE config.orgs IN SHARE ROW EXCLUSIVE MODE;
END
$$;
COMMENT ON FUNCTION config.lock_for_promotion() IS 'Release 6.4: the locks the promotion and its reversal take, in the lock order of docs/dba.md: projects (EXCLUSIVE), customer rows (uuid order), org_memberships (EXCLUSIVE), orgs (SHARE ROW EXCLUSIVE). A racing create, move or membership change ends before or after, never half.';

-- Raises p_code naming the first five blockers and the total (nothing changed).
CREATE FUNCTION config.refuse_blocked(p_what text, p_code text, p_blockers jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    total integer := jsonb_array_length(p_blockers);
    first text;
BEGIN
    IF total = 0 THEN
        RETURN;
    END IF;
    SELECT string_agg(format('%s %s: %s', b->>'kind', b->>'subject', b->>'reason'), '; ')
    INTO first FROM (SELECT b FROM jsonb_array_elements(p_blockers) b LIMIT 5) x;
    IF total > 5 THEN
        first := format('%s; and %s more', first, total - 5);
    END IF;
    RAISE EXCEPTION 'cannot %: % blocker(s): %; nothing changed', p_what, total, first
        USING ERRCODE = p_code, DETAIL = p_blockers::text,
              HINT = 'hierarchy orgs check lists every one with its remedy.';
END
$$;
COMMENT ON FUNCTION config.refuse_blocked(text, text, jsonb) IS 'Release 6.4: raises SQLSTATE p_code (HR070 promotion, HR071 reversal) naming the first five blockers and their total when there are any; DETAIL holds all of them as JSON.';

-- ---------------------------------------------------------------------------
-- The promotion
-- ---------------------------------------------------------------------------

-- The work, after the locks and checks (config.promote_customers): returns the counts.
CREATE FUNCTION config.promote_now(p_report boolean DEFAULT false) RETURNS jsonb
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

    -- the memberships as they were
    INSERT INTO config.promotion_memberships (user_id, org_id, promotion_id, role, is_primary)
    SELECT m.user_id, m.org_id, promo, m.role, m.is_primary FROM config.org_memberships m;

    -- each project into the org its customer stands for
    WITH mv AS (
        INSERT INTO config.promotion_projects (project_id, promotion_id, from_org, to_org)
        SELECT p.uuid, promo, p.org_id, po.org_id
        FROM config.projects p JOIN config.promoted_orgs po ON po.customer_id = p.customer_id
        WHERE p.org_id <> po.org_id
        RETURNING project_id, to_org
    )
    UPDATE config.projects p SET org_id = mv.to_org FROM mv WHERE p.uuid = mv.project_id;
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
          FROM config.promoted_orgs po JOIN config.orgs o ON o.uuid = po.org_id
          WHERE po.created AND po.source_org IS NOT NULL
          ORDER BY po.source_org, (SELECT count(*) FROM config.projects x WHERE x.org_id = po.org_id) DESC, o.name) s
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
COMMENT ON FUNCTION config.promote_now(boolean) IS 'Release 6.4: the promotion''s work, once locked and checked (call config.promote_customers): creates and maps the orgs, records the before-images, moves the projects, adds the memberships and moves primaries; returns the counts (p_report: and what it did, config.promotion_report).';

-- What the promotion in force did: the first p_limit rows of each list, with totals.
CREATE FUNCTION config.promotion_report(p_limit integer DEFAULT 1000) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH orgs AS (
        SELECT o.name AS org, c.name AS customer, c.origin, po.created, s.name AS from_org,
               (SELECT count(*) FROM config.projects x WHERE x.org_id = po.org_id) AS projects
        FROM config.promoted_orgs po
        JOIN config.orgs o ON o.uuid = po.org_id
        JOIN config.customers c ON c.uuid = po.customer_id
        LEFT JOIN config.orgs s ON s.uuid = po.source_org
    ), moves AS (
        SELECT p.name AS project, f.name AS from_org, t.name AS to_org
        FROM config.promotion_projects pp
        JOIN config.projects p ON p.uuid = pp.project_id
        JOIN config.orgs f ON f.uuid = pp.from_org
        JOIN config.orgs t ON t.uuid = pp.to_org
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
COMMENT ON FUNCTION config.promotion_report(integer) IS 'Release 6.4: what the promotion in force did, the first p_limit rows of each list with totals: orgs (created or mapped: name, customer, origin, from which org, projects), projects moved (from, to), memberships added or whose primary flag changed.';

CREATE FUNCTION config.promote_customers(dry_run boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    since timestamptz;
BEGIN
    PERFORM config.lock_for_promotion();
    SELECT p.promoted_at INTO since FROM config.org_promotions p WHERE p.demoted_at IS NULL;
    IF FOUND THEN
        RAISE EXCEPTION 'the customers are already promoted to orgs (since %): nothing changed; reverse it first with `hierarchy orgs demote`',
            to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
            USING ERRCODE = 'HR072';
    END IF;
    PERFORM config.refuse_blocked('promote customers to orgs', 'HR070',
        (SELECT coalesce(jsonb_agg(to_jsonb(b)), '[]') FROM config.promotion_blockers() b));
    IF NOT coalesce(dry_run, false) THEN
        RETURN config.promote_now() || jsonb_build_object('dry_run', false);
    END IF;
    RETURN config.rolled_back('SELECT config.promote_now(p_report => true)', '{}')
           || jsonb_build_object('dry_run', true);
END
$$;
COMMENT ON FUNCTION config.promote_customers(boolean) IS 'Release 6.4: promotes every customer to an org atomically (docs/design.md section 11): the counts. Refuses, changing nothing, when already promoted (SQLSTATE HR072) or blocked (HR070, naming the first five blockers and the total; config.promotion_blockers lists them). dry_run: the same work rolled back, with its plan (config.promotion_report).';

-- ---------------------------------------------------------------------------
-- The reversal
-- ---------------------------------------------------------------------------

-- Where each project of a created org goes back to: the org it came from, or (created after
-- the promotion) the org its customer's projects came from.
CREATE FUNCTION config.demotion_moves()
RETURNS TABLE (project_id uuid, project_name text, from_org uuid, to_org uuid)
LANGUAGE sql STABLE AS $$
    SELECT p.uuid, p.name, p.org_id, coalesce(pp.from_org, po.source_org)
    FROM config.promoted_orgs po
    JOIN config.projects p ON p.org_id = po.org_id
    LEFT JOIN config.promotion_projects pp ON pp.project_id = p.uuid
    WHERE po.created
$$;
COMMENT ON FUNCTION config.demotion_moves() IS 'Release 6.4, while promoted: the projects the reversal moves, from the org the promotion created to the org they came from (a project created after the promotion: the org its customer''s projects came from; NULL: none).';

CREATE FUNCTION config.demotion_blockers()
RETURNS TABLE (kind text, subject text, reason text, remedy text)
LANGUAGE sql STABLE AS $$
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
                SELECT p.org_id, p.name FROM config.projects p
                WHERE p.org_id IN (SELECT mv.to_org FROM mv)) d
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

CREATE FUNCTION config.demote_now() RETURNS jsonb
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

    WITH mv AS (SELECT * FROM config.demotion_moves())
    UPDATE config.projects p SET org_id = mv.to_org FROM mv WHERE p.uuid = mv.project_id;
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

    DELETE FROM config.promotion_projects pp WHERE pp.promotion_id = promo;
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

-- What the reversal in force would do, before doing it: the first p_limit rows with totals.
CREATE FUNCTION config.demotion_report(p_limit integer DEFAULT 1000) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH moves AS (
        SELECT mv.project_name AS project, f.name AS from_org, t.name AS to_org
        FROM config.demotion_moves() mv
        JOIN config.orgs f ON f.uuid = mv.from_org
        LEFT JOIN config.orgs t ON t.uuid = mv.to_org
    ), orgs AS (
        SELECT o.name AS org, c.name AS customer, s.name AS to_org,
               (SELECT count(*) FROM config.projects x WHERE x.org_id = po.org_id) AS projects,
               (SELECT count(*) FROM config.org_memberships m WHERE m.org_id = po.org_id) AS members
        FROM config.promoted_orgs po
        JOIN config.orgs o ON o.uuid = po.org_id
        JOIN config.customers c ON c.uuid = po.customer_id
        LEFT JOIN config.orgs s ON s.uuid = po.source_org
        WHERE po.created
    )
    SELECT jsonb_build_object(
        'orgs', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM orgs ORDER BY org LIMIT p_limit) r), '[]'),
        'orgs_total', (SELECT count(*) FROM orgs),
        'moves', coalesce((SELECT jsonb_agg(to_jsonb(r)) FROM (SELECT * FROM moves ORDER BY to_org, project LIMIT p_limit) r), '[]'),
        'moves_total', (SELECT count(*) FROM moves))
$$;
COMMENT ON FUNCTION config.demotion_report(integer) IS 'Release 6.4, while promoted: what the reversal would do, the first p_limit rows of each list with totals: the orgs it deletes (customer, members, projects, where they return) and the projects it moves (from, to).';

CREATE FUNCTION config.demote_orgs(dry_run boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    plan jsonb;
BEGIN
    PERFORM config.lock_for_promotion();
    IF config.promotion_in_force() IS NULL THEN
        RAISE EXCEPTION 'the customers are not promoted to orgs: nothing to reverse, nothing changed'
            USING ERRCODE = 'HR073';
    END IF;
    PERFORM config.refuse_blocked('reverse the promotion', 'HR071',
        (SELECT coalesce(jsonb_agg(to_jsonb(b)), '[]') FROM config.demotion_blockers() b));
    IF NOT coalesce(dry_run, false) THEN
        RETURN config.demote_now() || jsonb_build_object('dry_run', false);
    END IF;
    plan := config.demotion_report();
    RETURN config.rolled_back('SELECT config.demote_now()', '{}')
           || jsonb_build_object('dry_run', true, 'plan', plan);
END
$$;
COMMENT ON FUNCTION config.demote_orgs(boolean) IS 'Release 6.4: reverses the promotion in force atomically, restoring the layout before it (docs/design.md section 11): projects back in their orgs, memberships as they were, the created orgs deleted, customers kept; the counts. Refuses, changing nothing, when not promoted (SQLSTATE HR073) or blocked (HR071, naming the first five blockers and the total; config.demotion_blockers lists them). dry_run: the same work rolled back, with its plan (config.demotion_report).';
