"""Statements several test suites use to prove data survived an operation."""

# md5 over the project columns that exist at both releases (6.0 and 6.1): a project row's
# identity across upgrades, downgrades, job runs and crashes (associations are not in it).
PROJECTS_CHECKSUM = """
    SELECT md5(string_agg(concat_ws('|', uuid, org_id, name, description, settings, created, modified),
                          ',' ORDER BY uuid))
    FROM config.projects"""
