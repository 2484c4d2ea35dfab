-- Down from release 6.0 to an empty database: everything of the Config API goes.
-- This cannot be undone: orgs, projects, users, tunables and the audit log are deleted.
DROP SCHEMA config CASCADE;
