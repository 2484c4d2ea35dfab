-- The lock order of docs/dba.md: the projects table (every create or move waits), the
-- customer rows in uuid order (no rename or delete under the mapping), then the memberships
-- (every membership change waits) and the org names.
CREATE OR REPLACE FUNCTION config.lock_for_promotion() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE config.projects IN EXCLUSIVE MODE;
    PERFORM 1 FROM config.customers c ORDER BY c.uuid FOR NO KEY UPDATE;
    LOCK TABLE config.org_memberships IN EXCLUSIVE MODE;
    LOCK TABLE config.orgs IN SHARE ROW EXCLUSIVE MODE;
END
$$;
COMMENT ON FUNCTION config.lock_for_promotion() IS 'Release 6.4: the locks the promotion and its reversal take, in the lock order of docs/dba.md: projects (EXCLUSIVE), customer rows (uuid order), org_memberships (EXCLUSIVE), orgs (SHARE ROW EXCLUSIVE). A racing create, move or membership change ends before or after, never half.';
