-- Logins and bearer tokens. Only the SHA-256 of a token is stored.

-- name: login_challenge
-- The user of an email and its password's argon2 parameters and salt (never the hash), before
-- anyone is signed in: service_state.login_challenge (sql/privileges.sql, SECURITY DEFINER: the
-- runtime role may not read users.password_hash), in either form.
SELECT l.uuid, l.email, l.params, l.hash_len
FROM service_state.login_challenge(%(email)s::text) l;

-- name: log_in
-- The proof of the password (argon2's raw output, computed from login_challenge's parameters)
-- checked against the stored hash, and only then the token inserted and, when argon2's
-- parameters changed, the fresh hash stored: service_state.log_in (SECURITY DEFINER; the
-- runtime role can neither insert tokens nor write password hashes). `state`: ok, wrong or
-- inactive.
SELECT service_state.log_in(%(user_id)s::uuid, %(proof)s::bytea, %(token_hash)s::bytea, %(ttl)s::integer,
                            %(new_hash)s::text) AS state;

-- name: user_orgs
-- The orgs of a user as login and users/current list them: the primary org first (hdxcli
-- works in orgs[0]), then the others in the order the user joined them.
SELECT o.uuid, o.name
FROM config.org_memberships m
JOIN config.orgs o ON o.uuid = m.org_id
WHERE m.user_id = %(user_id)s::uuid
ORDER BY m.is_primary DESC, m.created, o.name;

-- name: user_orgs_one_org
SELECT o.uuid, o.name
FROM config.users u
JOIN config.orgs o ON o.uuid = u.org_id
WHERE u.uuid = %(user_id)s::uuid;

-- name: user_for_token
-- The token lookup: service_state.user_for_token (sql/privileges.sql), SECURITY DEFINER, which
-- reads the tokens, users and memberships before the user is known (row-level security hides
-- them from the runtime role until then) and takes the bearer token itself, not its hash (the
-- runtime role can read hashes; only a token signs a session in). For a valid token it sets
-- who acts (hierarchy.actor, hierarchy.user_id, read by the audit triggers and
-- customers.created_by) and signs it (hierarchy.user_key, what the policies trust): for the
-- transaction when %(local)s (a write), else for the session (a read in autocommit; the next
-- request's lookup replaces it, and any other use of the pooled connection runs sign_out first:
-- service.db.Database.connection).
-- `state` says why a token is refused (revoked, expired, inactive) so the 401 can say it.
-- It decides, once per request, everything the other statements are scoped by:
-- `orgs`, the user's orgs (primary first); `write_orgs`, those whose role may change projects
-- (projects.write); `role` and `permissions`: under /orgs/{org}/ (%(org_id)s given) those of
-- the user's role in that org, elsewhere the role of its primary org and the permissions of
-- all its roles (a write touching a project is scoped by `write_orgs` in its statement).
-- `org_visible`: whether the user may see org %(org_id)s as orgs.get decides (true when
-- NULL), so a request under /orgs/{org}/ needs no separate org check: 401, 403 and 404 are
-- answered from this one row. Release 6.4's memberships or users.org_id/role before: the
-- function reads whichever exists.
SELECT t.uuid, t.email, t.orgs, t.write_orgs, t.role, t.state, t.permissions, t.org_visible
FROM service_state.user_for_token(%(token)s::text, %(org_id)s::uuid, %(local)s::boolean) t;

-- name: sign_out
-- A pooled connection a read's user_for_token signed in for the session, before a use that is
-- not a token lookup (login, health, the scheduler): it sees nothing of that user's.
SELECT set_config('hierarchy.user_key', '', false), set_config('hierarchy.user_id', '', false),
       set_config('hierarchy.user_orgs', '', false), set_config('hierarchy.user_sees_all', '', false),
       set_config('hierarchy.actor', '', false);

-- name: revoke_token
UPDATE config.tokens SET revoked = now() WHERE token_hash = %(token_hash)s::bytea AND revoked IS NULL;

-- name: set_actor
-- Who acts, for the audit triggers and customers.created_by (transaction-scoped).
SELECT set_config('hierarchy.actor', %(actor)s::text, true),
       set_config('hierarchy.user_id', %(user_id)s::text, true);

-- name: prune_tokens
-- Tokens expired for a day are useless; the login path prunes a few at a time.
DELETE FROM config.tokens
WHERE token_hash IN (SELECT token_hash FROM config.tokens
                     WHERE expires < now() - interval '1 day' LIMIT 100);
