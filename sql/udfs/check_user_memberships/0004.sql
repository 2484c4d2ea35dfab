-- The version of release 6.4's first step: taken in by migrations/0004.org-memberships.sql, and
-- back in by 0005's rollback.
CREATE OR REPLACE FUNCTION config.check_user_memberships() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who       uuid;
    email     text;
    primaries integer;
    total     integer;
    sees_all  boolean;
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        who := NEW.uuid;
    ELSIF TG_OP = 'DELETE' THEN
        who := OLD.user_id;
    ELSE
        who := NEW.user_id;
    END IF;
    SELECT u.email INTO email FROM config.users u WHERE u.uuid = who;
    IF NOT FOUND THEN
        RETURN NULL;  -- the user is gone (its memberships went with it)
    END IF;
    SELECT count(*) FILTER (WHERE m.is_primary), count(*), coalesce(bool_or(config.role_sees_every_org(m.role)), false)
    INTO primaries, total, sees_all
    FROM config.org_memberships m WHERE m.user_id = who;
    IF primaries <> 1 THEN
        RAISE EXCEPTION 'user % must have exactly one primary org (it has %)', email, primaries
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_primary_kept',
                  HINT = 'Make another org primary first (config.set_primary_org), or add the user to an org as primary.';
    END IF;
    IF sees_all AND total > 1 THEN
        RAISE EXCEPTION 'user % is a super admin and belongs to % orgs: a super admin belongs to exactly one org (it sees every org)', email, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'org_memberships_super_admin_single';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION config.check_user_memberships() IS 'Release 6.4: deferred check at commit: a user has exactly one primary org, and a user holding a role with all_orgs has exactly one membership (SQLSTATE 23514, constraints org_memberships_primary_kept, org_memberships_super_admin_single).';
