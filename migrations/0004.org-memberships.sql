-- depends: 0003.customers-required
-- Release 6.4, second migration: org memberships (docs/design.md section 10). A user belongs to
-- one or more orgs, with a role in each and exactly one primary org; users.org_id and
-- users.role move into config.org_memberships (each fact written once: the upgrade backfills
-- one primary membership per user from them and drops the two columns).
--
-- Release 6.4 spans two migrations (0003, then this one): from here on every migration also
-- (re)defines config.schema_migration() returning its own id, and its rollback drops it (or
-- redefines it to the id before), so service/migrations.py knows where inside a release the
-- database stands. Absent, it means the first migration of the reported release.
--
-- Rule map:
--   one primary at most      unique partial index org_memberships_one_primary
--   one primary at least     deferred constraint triggers org_memberships_checked and
--                            users_have_primary_org (config.check_user_memberships)
--   super admins: one org    config.check_user_memberships (and the functions below):
--                            a user holding a role with all_orgs has exactly one membership
--   changes                  config.add_membership, config.remove_membership,
--                            config.set_membership_role, config.set_primary_org
--   audit                    triggers org_memberships_audit_* (config.audit_memberships)
--   downgrade refused        while a user holds several memberships: the rollback raises
--                            HR061 naming them (config.downgrade_blockers)

LOCK TABLE config.users IN ACCESS EXCLUSIVE MODE;

-- ---------------------------------------------------------------------------
-- The table
-- ---------------------------------------------------------------------------

CREATE TABLE config.org_memberships (
    user_id    uuid NOT NULL REFERENCES config.users (uuid) ON DELETE CASCADE,
    org_id     uuid NOT NULL REFERENCES config.orgs (uuid) ON DELETE RESTRICT,
    role       text NOT NULL REFERENCES config.roles (name),
    is_primary boolean NOT NULL DEFAULT false,
    created    timestamptz NOT NULL DEFAULT now(),
    modified   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT org_memberships_pkey PRIMARY KEY (user_id, org_id)
);
CREATE UNIQUE INDEX org_memberships_one_primary ON config.org_memberships (user_id) WHERE is_primary;
CREATE INDEX org_memberships_org_idx ON config.org_memberships (org_id);
COMMENT ON TABLE config.org_memberships IS 'Release 6.4: the orgs a user belongs to, its role in each, and its primary org (exactly one per user; a super admin has exactly one membership and sees every org). Change it with config.add_membership, config.remove_membership, config.set_membership_role, config.set_primary_org.';
COMMENT ON COLUMN config.org_memberships.user_id IS 'The member (deleting the user deletes its memberships).';
COMMENT ON COLUMN config.org_memberships.org_id IS 'The org it belongs to.';
COMMENT ON COLUMN config.org_memberships.role IS 'Its role in that org: super_admin, operator or read_only (see role_permissions).';
COMMENT ON COLUMN config.org_memberships.is_primary IS 'The user''s primary org (login lists it first; hdxcli works in orgs[0]). Exactly one per user at commit.';
COMMENT ON COLUMN config.org_memberships.created IS 'When the user joined the org (the upgrade copies the user''s created).';
COMMENT ON COLUMN config.org_memberships.modified IS 'Last change of role or primary.';
COMMENT ON INDEX config.org_memberships_one_primary IS 'At most one primary org per user.';
COMMENT ON INDEX config.org_memberships_org_idx IS 'The members of an org.';

-- Each user's org and role become its primary membership (not audited row by row: the
-- upgrade is the change, and nothing about any user changes).
INSERT INTO config.org_memberships (user_id, org_id, role, is_primary, created, modified)
SELECT u.uuid, u.org_id, u.role, true, u.created, u.modified FROM config.users u;

DROP TRIGGER users_touch ON config.users;
ALTER TABLE config.users DROP COLUMN org_id, DROP COLUMN role;
CREATE TRIGGER users_touch BEFORE UPDATE OF email, password_hash, is_active ON config.users
    FOR EACH ROW EXECUTE FUNCTION config.touch_modified();
COMMENT ON TRIGGER users_touch ON config.users IS 'Bumps modified when a user changes.';
COMMENT ON TABLE config.users IS 'People who call the API. From release 6.4 their orgs and roles are in org_memberships.';

CREATE TRIGGER org_memberships_touch BEFORE UPDATE OF role, is_primary ON config.org_memberships
    FOR EACH ROW EXECUTE FUNCTION config.touch_modified();
COMMENT ON TRIGGER org_memberships_touch ON config.org_memberships IS 'Bumps modified when a membership changes.';

-- ---------------------------------------------------------------------------
-- Facts
-- ---------------------------------------------------------------------------

-- A role that sees every org (super_admin): its holder belongs to exactly one org.
CREATE FUNCTION config.role_sees_every_org(p_role text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM config.role_permissions rp WHERE rp.role = p_role AND rp.permission = 'all_orgs')
$$;
COMMENT ON FUNCTION config.role_sees_every_org(text) IS 'Release 6.4: whether a role holds all_orgs (super_admin); a user holding it has exactly one membership.';

CREATE FUNCTION config.schema_migration() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0004.org-memberships'::text $$;
COMMENT ON FUNCTION config.schema_migration() IS 'The last migration applied (from 0004 on; absent: the first migration of config.schema_release()). Read by hierarchy migrate when a release spans several migrations.';

-- ---------------------------------------------------------------------------
-- Every user: exactly one primary at commit; a super admin: one membership
-- ---------------------------------------------------------------------------

\ir ../sql/udfs/check_user_memberships/0004.sql

CREATE CONSTRAINT TRIGGER org_memberships_checked AFTER INSERT OR UPDATE OR DELETE ON config.org_memberships
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION config.check_user_memberships();
COMMENT ON TRIGGER org_memberships_checked ON config.org_memberships IS 'At commit: the member still has exactly one primary org, and a super admin one membership.';
CREATE CONSTRAINT TRIGGER users_have_primary_org AFTER INSERT ON config.users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION config.check_user_memberships();
COMMENT ON TRIGGER users_have_primary_org ON config.users IS 'At commit: a new user has exactly one primary org (create it with its membership, in one transaction).';

-- ---------------------------------------------------------------------------
-- Audit (rule 10 for memberships): object_type org_memberships, object_id the user
-- ---------------------------------------------------------------------------

CREATE FUNCTION config.audit_memberships() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO config.audit_log (action, object_type, object_id, after)
        SELECT 'insert', 'org_memberships', n.user_id, to_jsonb(n) FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO config.audit_log (action, object_type, object_id, before)
        SELECT 'delete', 'org_memberships', o.user_id, to_jsonb(o) FROM old_rows o;
    ELSE
        INSERT INTO config.audit_log (action, object_type, object_id, changed, before, after)
        SELECT 'update', 'org_memberships', n.user_id,
               array_remove(ARRAY[CASE WHEN o.is_primary <> n.is_primary THEN 'is_primary' END,
                                  CASE WHEN o.role <> n.role THEN 'role' END], NULL),
               jsonb_build_object('org_id', o.org_id)
                   || CASE WHEN o.is_primary <> n.is_primary THEN jsonb_build_object('is_primary', o.is_primary) ELSE '{}' END
                   || CASE WHEN o.role <> n.role THEN jsonb_build_object('role', o.role) ELSE '{}' END,
               jsonb_build_object('org_id', n.org_id)
                   || CASE WHEN o.is_primary <> n.is_primary THEN jsonb_build_object('is_primary', n.is_primary) ELSE '{}' END
                   || CASE WHEN o.role <> n.role THEN jsonb_build_object('role', n.role) ELSE '{}' END
        FROM new_rows n JOIN old_rows o USING (user_id, org_id)
        WHERE o.is_primary <> n.is_primary OR o.role <> n.role;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION config.audit_memberships() IS 'Release 6.4: AFTER statement trigger writing one audit_log row per added, changed or removed membership (object_type org_memberships, object_id the user; an update names the org and its changed columns).';

COMMENT ON COLUMN config.audit_log.object_type IS 'Table name of the object: orgs, projects, customers, tunables, users, org_memberships (release 6.4; object_id is the user).';

CREATE TRIGGER org_memberships_audit_insert AFTER INSERT ON config.org_memberships REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_memberships();
CREATE TRIGGER org_memberships_audit_update AFTER UPDATE ON config.org_memberships REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_memberships();
CREATE TRIGGER org_memberships_audit_delete AFTER DELETE ON config.org_memberships REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION config.audit_memberships();
COMMENT ON TRIGGER org_memberships_audit_insert ON config.org_memberships IS 'audit_log rows for added memberships.';
COMMENT ON TRIGGER org_memberships_audit_update ON config.org_memberships IS 'audit_log rows for changed roles and primary orgs.';
COMMENT ON TRIGGER org_memberships_audit_delete ON config.org_memberships IS 'audit_log rows for removed memberships.';

-- ---------------------------------------------------------------------------
-- Changing memberships: what the API, the CLI and a DBA call. Each one locks the user's row
-- first (so changes to one user's memberships run one after the other), checks, and changes,
-- in one statement's transaction; every refusal changes nothing and says how to proceed.
-- ---------------------------------------------------------------------------

-- The user (locked) and the membership in an org, or a refusal naming what is missing.
CREATE FUNCTION config.lock_member(p_user uuid, p_org uuid, p_must_belong boolean,
                                   OUT email text, OUT org_name text, OUT member config.org_memberships)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT u.email INTO email FROM config.users u WHERE u.uuid = p_user FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no user %', p_user
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'org_memberships_user_id_fkey';
    END IF;
    SELECT o.name INTO org_name FROM config.orgs o WHERE o.uuid = p_org;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no org %', p_org
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'org_memberships_org_id_fkey';
    END IF;
    SELECT m.* INTO member FROM config.org_memberships m WHERE m.user_id = p_user AND m.org_id = p_org;
    IF p_must_belong AND member.user_id IS NULL THEN
        RAISE EXCEPTION 'user % is not a member of org %', email, org_name
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_member',
                  HINT = 'Add the user to the org first (config.add_membership).';
    END IF;
END
$$;
COMMENT ON FUNCTION config.lock_member(uuid, uuid, boolean) IS 'Release 6.4: locks a user''s row and returns its email, the org''s name and its membership there (NULLs when none); refuses an unknown user or org, and a missing membership when p_must_belong.';

CREATE FUNCTION config.refuse_unknown_role(p_role text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM config.roles r WHERE r.name = p_role) THEN
        RAISE EXCEPTION 'unknown role %: use one of %', p_role,
            (SELECT string_agg(r.name, ', ' ORDER BY r.name) FROM config.roles r)
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'org_memberships_role_fkey';
    END IF;
END
$$;
COMMENT ON FUNCTION config.refuse_unknown_role(text) IS 'Release 6.4: refuses a role that config.roles does not have, listing those it has.';

CREATE FUNCTION config.add_membership(p_user uuid, p_org uuid, p_role text, p_primary boolean DEFAULT false)
RETURNS config.org_memberships
LANGUAGE plpgsql AS $$
DECLARE
    who  record;
    made config.org_memberships;
BEGIN
    PERFORM service_state.require_request_permission('config.add_membership', 'users.write');
    SELECT * INTO who FROM config.lock_member(p_user, p_org, false);
    PERFORM config.refuse_unknown_role(p_role);
    IF (who.member).user_id IS NOT NULL THEN
        RAISE EXCEPTION 'user % is already a member of org % (role %)', who.email, who.org_name, (who.member).role
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'org_memberships_pkey',
                  HINT = 'Change its role there with config.set_membership_role.';
    END IF;
    IF EXISTS (SELECT 1 FROM config.org_memberships m
               WHERE m.user_id = p_user AND (config.role_sees_every_org(m.role) OR config.role_sees_every_org(p_role))) THEN
        RAISE EXCEPTION 'user % cannot join org %: a super admin belongs to exactly one org (it sees every org)', who.email, who.org_name
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_super_admin_single';
    END IF;
    IF p_primary THEN
        UPDATE config.org_memberships m SET is_primary = false WHERE m.user_id = p_user AND m.is_primary;
    END IF;
    INSERT INTO config.org_memberships (user_id, org_id, role, is_primary)
    VALUES (p_user, p_org, p_role,
            p_primary OR NOT EXISTS (SELECT 1 FROM config.org_memberships m WHERE m.user_id = p_user))
    RETURNING * INTO made;
    RETURN made;
END
$$;
COMMENT ON FUNCTION config.add_membership(uuid, uuid, text, boolean) IS 'Release 6.4: adds a user to an org with a role (p_primary: it becomes the primary org; a user''s first membership always is). Refuses an unknown user, org or role, a membership the user already has, and a second org for a super admin. Audited.';

CREATE FUNCTION config.remove_membership(p_user uuid, p_org uuid) RETURNS config.org_memberships
LANGUAGE plpgsql AS $$
DECLARE
    who  record;
    gone config.org_memberships;
BEGIN
    PERFORM service_state.require_request_permission('config.remove_membership', 'users.write');
    SELECT * INTO who FROM config.lock_member(p_user, p_org, true);
    IF (who.member).is_primary THEN
        RAISE EXCEPTION 'org % is the primary org of user %: %', who.org_name, who.email,
            CASE WHEN (SELECT count(*) FROM config.org_memberships m WHERE m.user_id = p_user) = 1
                 THEN 'it is the user''s only org; a user belongs to at least one'
                 ELSE 'make another of its orgs primary first' END
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_primary_kept',
                  HINT = 'config.set_primary_org(user, other org), then remove this one.';
    END IF;
    DELETE FROM config.org_memberships m WHERE m.user_id = p_user AND m.org_id = p_org RETURNING * INTO gone;
    RETURN gone;
END
$$;
COMMENT ON FUNCTION config.remove_membership(uuid, uuid) IS 'Release 6.4: removes a user from an org. Refuses an unknown user or org, an org the user does not belong to, and its primary org (so also its last one): make another org primary first. Audited.';

CREATE FUNCTION config.set_membership_role(p_user uuid, p_org uuid, p_role text) RETURNS config.org_memberships
LANGUAGE plpgsql AS $$
DECLARE
    who     record;
    changed config.org_memberships;
BEGIN
    PERFORM service_state.require_request_permission('config.set_membership_role', 'users.write');
    SELECT * INTO who FROM config.lock_member(p_user, p_org, true);
    PERFORM config.refuse_unknown_role(p_role);
    IF config.role_sees_every_org(p_role)
       AND EXISTS (SELECT 1 FROM config.org_memberships m WHERE m.user_id = p_user AND m.org_id <> p_org) THEN
        RAISE EXCEPTION 'user % belongs to % orgs: a super admin belongs to exactly one org (it sees every org)', who.email,
            (SELECT count(*) FROM config.org_memberships m WHERE m.user_id = p_user)
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_super_admin_single',
                  HINT = 'Remove its other memberships first.';
    END IF;
    UPDATE config.org_memberships m SET role = p_role
    WHERE m.user_id = p_user AND m.org_id = p_org
    RETURNING * INTO changed;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION config.set_membership_role(uuid, uuid, text) IS 'Release 6.4: gives a user a role in one of its orgs. Refuses an unknown user, org or role, an org the user does not belong to, and super_admin for a user of several orgs. Audited (only when it changes).';

CREATE FUNCTION config.set_primary_org(p_user uuid, p_org uuid) RETURNS config.org_memberships
LANGUAGE plpgsql AS $$
DECLARE
    who     record;
    changed config.org_memberships;
BEGIN
    PERFORM service_state.require_request_permission('config.set_primary_org', 'users.write');
    SELECT * INTO who FROM config.lock_member(p_user, p_org, true);
    IF NOT (who.member).is_primary THEN
        UPDATE config.org_memberships m SET is_primary = false WHERE m.user_id = p_user AND m.is_primary;
        UPDATE config.org_memberships m SET is_primary = true WHERE m.user_id = p_user AND m.org_id = p_org;
    END IF;
    SELECT m.* INTO changed FROM config.org_memberships m WHERE m.user_id = p_user AND m.org_id = p_org;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION config.set_primary_org(uuid, uuid) IS 'Release 6.4: makes one of a user''s orgs its primary org (the old primary stays a membership). Refuses an unknown user or org and an org the user does not belong to. Audited.';

-- ---------------------------------------------------------------------------
-- What blocks the downgrade to 6.1 (one org per user there)
-- ---------------------------------------------------------------------------

CREATE FUNCTION config.downgrade_blockers()
RETURNS TABLE (user_id uuid, email text, orgs text[], reason text, remedy text)
LANGUAGE sql STABLE AS $$
    SELECT u.uuid, u.email,
           array_agg(o.name ORDER BY m.is_primary DESC, o.name),
           format('belongs to %s orgs; release 6.1 has one org per user', count(*)),
           format('remove it from every org but its primary %s (hierarchy user remove-org %s --org NAME, or config.remove_membership)',
                  (array_agg(o.name) FILTER (WHERE m.is_primary))[1], u.email)
    FROM config.users u
    JOIN config.org_memberships m ON m.user_id = u.uuid
    JOIN config.orgs o ON o.uuid = m.org_id
    GROUP BY u.uuid, u.email
    HAVING count(*) > 1
    ORDER BY lower(u.email)
$$;
COMMENT ON FUNCTION config.downgrade_blockers() IS 'Release 6.4: the users that block a downgrade to 6.1 (they belong to several orgs, and 6.1 has one org per user), with the remedy.';

CREATE OR REPLACE FUNCTION config.schema_release() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '6.4'::text $$;
