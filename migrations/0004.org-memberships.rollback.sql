-- Down from 0004 (release 6.4 with memberships) to 0003 (6.4 without): users.org_id and
-- users.role come back from each user's primary membership, and the memberships go.
-- Refused, changing nothing, while any user belongs to several orgs: release 6.1 has one org
-- per user, and dropping the others would lose them (config.downgrade_blockers names them).
-- Not kept: the membership rows' created/modified and their audit rows stay in audit_log
-- (object_type org_memberships) as history.

LOCK TABLE config.users, config.org_memberships IN ACCESS EXCLUSIVE MODE;

DO $$
DECLARE
    total integer;
    first text;
BEGIN
    SELECT count(*)::integer,
           string_agg(format('%s (%s)', b.email, array_to_string(b.orgs, ', ')), '; ') FILTER (WHERE b.n <= 5)
    INTO total, first
    FROM (SELECT d.*, row_number() OVER () AS n FROM config.downgrade_blockers() d) b;
    IF total > 0 THEN
        IF total > 5 THEN
            first := format('%s and %s more', first, total - 5);
        END IF;
        RAISE EXCEPTION 'cannot downgrade below org memberships: % user(s) belong to several orgs and release 6.1 has one org per user: %; remove each from every org but its primary (`hierarchy user remove-org EMAIL --org NAME`), then downgrade again',
            total, first
            USING ERRCODE = 'HR061',
                  DETAIL = 'SELECT * FROM config.downgrade_blockers() lists every one.';
    END IF;
END
$$;

DROP FUNCTION config.downgrade_blockers();
DROP FUNCTION config.set_primary_org(uuid, uuid);
DROP FUNCTION config.set_membership_role(uuid, uuid, text);
DROP FUNCTION config.remove_membership(uuid, uuid);
DROP FUNCTION config.add_membership(uuid, uuid, text, boolean);
DROP FUNCTION config.refuse_unknown_role(text);
DROP FUNCTION config.lock_member(uuid, uuid, boolean);

DROP TRIGGER users_have_primary_org ON config.users;
DROP TRIGGER users_touch ON config.users;
ALTER TABLE config.users
    ADD COLUMN org_id uuid REFERENCES config.orgs (uuid) ON DELETE RESTRICT,
    ADD COLUMN role text REFERENCES config.roles (name);
-- Restoring the columns changes no user: not audited, modified left alone.
ALTER TABLE config.users DISABLE TRIGGER users_audit_update;
UPDATE config.users u SET org_id = m.org_id, role = m.role
FROM config.org_memberships m
WHERE m.user_id = u.uuid AND m.is_primary;
ALTER TABLE config.users ENABLE TRIGGER users_audit_update;
ALTER TABLE config.users ALTER COLUMN org_id SET NOT NULL, ALTER COLUMN role SET NOT NULL;
COMMENT ON TABLE config.users IS 'People who call the API. A user belongs to one org and holds one role.';
COMMENT ON COLUMN config.users.org_id IS 'The org whose objects the user sees (super_admin: every org).';
COMMENT ON COLUMN config.users.role IS 'super_admin, operator or read_only (see role_permissions).';
CREATE TRIGGER users_touch BEFORE UPDATE OF email, password_hash, org_id, role, is_active ON config.users
    FOR EACH ROW EXECUTE FUNCTION config.touch_modified();
COMMENT ON TRIGGER users_touch ON config.users IS 'Bumps modified when a user changes.';

DROP TABLE config.org_memberships;
COMMENT ON COLUMN config.audit_log.object_type IS 'Table name of the object: orgs, projects, customers, tunables, users.';
DROP FUNCTION config.audit_memberships();
DROP FUNCTION config.check_user_memberships();
DROP FUNCTION config.role_sees_every_org(text);
DROP FUNCTION config.schema_migration();
