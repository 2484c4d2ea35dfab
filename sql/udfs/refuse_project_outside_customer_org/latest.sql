-- Row level on INSERT (it fills in the customer), statement level on UPDATE: a promotion or its
-- reversal moves every project in one statement, checked once, not once per row.
CREATE OR REPLACE FUNCTION config.refuse_project_outside_customer_org() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    stands  uuid;
    bad     record;
    n       bigint;
BEGIN
    IF config.promotion_in_force() IS NULL THEN
        RETURN CASE WHEN TG_LEVEL = 'ROW' THEN NEW END;
    END IF;
    IF TG_LEVEL = 'STATEMENT' THEN
        SELECT x.name, x.customer_id, x.stands, count(*) OVER () AS n INTO bad
        FROM (SELECT r.name, r.customer_id, po.org_id AS stands
              FROM new_rows r LEFT JOIN config.promoted_orgs po ON po.customer_id = r.customer_id
              WHERE po.org_id IS DISTINCT FROM r.org_id) x
        ORDER BY x.name LIMIT 1;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        n := bad.n;
        RAISE EXCEPTION 'project % must be in the org its customer % stands for (%): the customers are promoted to orgs%',
            bad.name, (SELECT c.name FROM config.customers c WHERE c.uuid = bad.customer_id),
            coalesce((SELECT o.name FROM config.orgs o WHERE o.uuid = bad.stands), 'none: it was created after the promotion'),
            CASE WHEN n > 1 THEN format(' (and %s more projects)', n - 1) ELSE '' END
            USING ERRCODE = 'check_violation', CONSTRAINT = 'projects_org_is_customer_org', COLUMN = 'customer_id',
                  HINT = 'Name the customer the project''s org stands for (GET /config/v1/orgs/{org} shows it).';
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
COMMENT ON FUNCTION config.refuse_project_outside_customer_org() IS 'Release 6.4, while promoted: refuses a project whose org is not the org its customer stands for (SQLSTATE 23514, constraint projects_org_is_customer_org): BEFORE INSERT row trigger (a project created without a customer in an org that stands for one gets it) and AFTER UPDATE statement trigger (one set-based check of the updated rows, naming the first).';
