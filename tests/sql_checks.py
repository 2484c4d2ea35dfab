"""Statements several test suites use to prove data survived an operation."""

# md5 over the project columns that exist at both releases (6.0 and 6.1): a project row's
# identity across upgrades, downgrades, job runs and crashes (associations are not in it).
PROJECTS_CHECKSUM = """
    SELECT md5(string_agg(concat_ws('|', uuid, org_id, name, description, settings, created, modified),
                          ',' ORDER BY uuid))
    FROM config.projects"""

# Every project row (its customer and bookkeeping included), every customer row, every
# project-customer pair: identical before and after a step between 6.1 and 6.4.
PROJECT_ROWS = "SELECT md5(string_agg(p::text, ',' ORDER BY p.uuid)) FROM config.projects p"
CUSTOMER_ROWS = "SELECT md5(string_agg(c::text, ',' ORDER BY c.uuid)) FROM config.customers c"
ASSOCIATIONS = (
    "SELECT md5(string_agg(p.uuid || '>' || p.customer_id, ',' ORDER BY p.uuid)) FROM config.projects p"
)
ROWS_CHECKSUM = f"SELECT ({PROJECT_ROWS}) || ({CUSTOMER_ROWS})"
