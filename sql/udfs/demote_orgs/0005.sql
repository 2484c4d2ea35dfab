CREATE OR REPLACE FUNCTION config.demote_orgs(dry_run boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    plan jsonb;
BEGIN
    PERFORM service_state.require_request_permission('config.demote_orgs', 'all_orgs');
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
