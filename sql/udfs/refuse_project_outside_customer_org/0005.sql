CREATE OR REPLACE FUNCTION config.refuse_project_outside_customer_org() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    stands uuid;
BEGIN
    IF config.promotion_in_force() IS NULL THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' AND NEW.customer_id IS NULL THEN
        -- the org is its customer: a project created in it without one (hdxcli sends only the
        -- name) gets the customer the org stands for; an org standing for none leaves it NULL
        SELECT po.customer_id INTO NEW.customer_id FROM config.promoted_orgs po WHERE po.org_id = NEW.org_id;
        IF NEW.customer_id IS NULL THEN
            RETURN NEW;  -- refused by customer_id NOT NULL: "This field is required."
        END IF;
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
COMMENT ON FUNCTION config.refuse_project_outside_customer_org() IS 'Release 6.4, while promoted: BEFORE INSERT OR UPDATE trigger refusing a project whose org is not the org its customer stands for (SQLSTATE 23514, constraint projects_org_is_customer_org); a project created without a customer in an org that stands for one gets it.';
