CREATE OR REPLACE FUNCTION config.promote_customers(dry_run boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    since timestamptz;
BEGIN
    PERFORM service_state.require_request_permission('config.promote_customers', 'all_orgs');
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
