CREATE OR REPLACE FUNCTION config.promotion_in_force() RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT p.id FROM config.org_promotions p WHERE p.demoted_at IS NULL $$;
COMMENT ON FUNCTION config.promotion_in_force() IS 'Release 6.4: the id of the promotion in force, NULL when the customers are not promoted.';
