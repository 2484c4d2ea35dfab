-- The promotion of customers to orgs (migrations/0005, release 6.4): the check, the step and
-- its reversal, for the CLI (hierarchy orgs) and the API (/config/v1/orgs/promotion/).

-- name: state
-- The promotion in force (no row: the customers are not promoted).
SELECT p.id, p.promoted_at, p.promoted_by, p.per_project, p.summary
FROM config.org_promotions p
WHERE p.demoted_at IS NULL;

-- name: promotion_blockers
-- What blocks the promotion: the first %(limit)s with the total.
SELECT b.kind, b.subject, b.reason, b.remedy, count(*) OVER () AS total
FROM config.promotion_blockers() b
LIMIT %(limit)s::bigint;

-- name: demotion_blockers
-- What blocks the reversal: the first %(limit)s with the total.
SELECT b.kind, b.subject, b.reason, b.remedy, count(*) OVER () AS total
FROM config.demotion_blockers() b
LIMIT %(limit)s::bigint;

-- name: promote
SELECT config.promote_customers(dry_run => %(dry_run)s::boolean) AS result;

-- name: demote
SELECT config.demote_orgs(dry_run => %(dry_run)s::boolean) AS result;
