// Package postgres is the connector for PostgreSQL roles.
//
// An account is a LOGIN role; an entitlement is membership in an existing
// NOLOGIN group role (GRANT group TO user). EnsureEntitlement
// (connectors.EntitlementCatalog, for seeding a fresh cluster) creates a
// missing group role NOLOGIN and without privileges, its description as the
// comment, and never marks it as managed. Disabled means NOLOGIN. Every
// role the connector creates carries a marker comment
// (COMMENT ON ROLE ... IS 'provisio:{json}') holding the employee ID and
// descriptive attributes, so they read back through GetAccount and so the
// connector can refuse to update, disable, enable or delete any role it did
// not create (postgres, service roles, roles made by hand): those are
// reported as Conflict. The comment is readable by every user of the
// cluster (pg_shdescription is public), so it holds names and e-mail
// addresses only, never secrets.
//
// Safety rules that hold throughout:
//   - every identifier is quoted with pgx.Identifier.Sanitize and every
//     value is a query parameter (the one exception, the comment text, is a
//     literal built by quoteLiteral, because COMMENT takes no parameters);
//   - role names are validated first: empty, longer than 63 bytes
//     (NAMEDATALEN-1, beyond which PostgreSQL would silently truncate), NUL,
//     control characters, invalid UTF-8, the reserved pg_ prefix and the
//     pseudo-roles public and none are refused; anything else (quotes,
//     semicolons, spaces, non-ASCII) is used exactly as given;
//   - a group that is, or through membership leads to, a SUPERUSER,
//     CREATEROLE, REPLICATION or BYPASSRLS role, or a predefined pg_ role,
//     is never granted or revoked (PermissionDenied);
//   - error texts never carry the connection URL or password.
//
// Each operation runs in one transaction and takes a transaction-scoped
// advisory lock on the role name, so concurrent activities on the same role
// serialise. Two steps deliberately run after the commit: ending sessions
// (pg_terminate_backend), because a session terminated before NOLOGIN is
// committed could log straight back in; and, for DeleteAccount, cleaning
// other databases, which needs a connection per database.
//
// DeleteAccount runs REASSIGN OWNED BY role TO CURRENT_USER and DROP OWNED
// BY role in every database where the role owns objects or holds
// privileges (found in pg_shdepend), then drops the role: its tables and
// data survive, owned by the connector's own role, for the data owner to
// review. A database that refuses connections (datallowconn = false) cannot
// be cleaned, and the delete is then reported as Conflict.
//
// Verify reads a revocation back from the catalogue, one query per check,
// without a transaction or the role lock (it reports what PostgreSQL
// enforces at that moment). Disabled means the role is managed, NOLOGIN,
// and no backend in pg_stat_activity, in any database, has it as session
// user: NOLOGIN only refuses new logins, so a role made NOLOGIN without
// ending its sessions is not disabled, and the detail names the pids still
// open. Revoked means the role is not a direct member of the group (a
// missing role or group holds nothing). Deleted means no role of the name
// exists. Verify is never more lenient than reading GetAccount: a role of
// the name counts as existing, and holds its memberships, whether provisio
// manages it or not.
//
// Granting and revoking an entitlement adds or removes one
// pg_auth_members row (GRANT/REVOKE of one member); the group's other
// members are never read or rewritten, so groups of thousands stay fast and
// concurrent changes to one group do not overwrite each other.
//
// The connector's own role needs to create and drop roles, to hold the
// privileges of the roles it manages (REASSIGN and DROP OWNED require it:
// in practice a superuser, or from PostgreSQL 16 a CREATEROLE role with
// createrole_self_grant = 'set, inherit'), pg_signal_backend to end
// sessions, and CONNECT on every database. PostgreSQL 14 or later is
// required: ending a session waits up to five seconds for the backend to
// exit. The connector never sets passwords: authentication is configured
// out of band (pg_hba: LDAP, certificates, Kerberos).
package postgres
