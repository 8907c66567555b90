// Package ldap is the connector for LDAP directories (OpenLDAP, and Active
// Directory through the "ad" disable strategy). It implements
// connectors.Connector on top of github.com/go-ldap/ldap/v3.
//
// # Directory layout
//
// An account is an inetOrgPerson entry named uid=<username>,<PeopleDN> with
// cn, sn, givenName, displayName, mail and employeeNumber (the HR employee
// ID). sn and cn are mandatory in the schema: when the request leaves them
// empty, sn falls back to the username and cn to the display name, the full
// name or the username. An entitlement is a groupOfNames entry anywhere
// under GroupsDN, identified by its cn; holding it means being one value of
// its member attribute.
//
// # Safety
//
// Usernames are refused when empty, longer than 64 characters, not UTF-8 or
// holding control characters. Every other character is allowed and escaped:
// DNs with RFC 4514 escaping (buildDN) and filters with RFC 4515 escaping
// (buildFilter), so "x,ou=groups" names uid=x\,ou=groups under PeopleDN and
// "*)(uid=*" matches only itself. LDAP compares uid case- and
// space-insensitively, so "Alice" and "alice" name the same entry; the
// connector only acts on an entry whose stored uid is spelled exactly as
// requested and reports a Conflict otherwise, so one account can never be
// changed through another's name.
//
// # Group membership
//
// Grant and revoke each send one modify with a single member value (ADD or
// DELETE), never a rewrite of the member list, so they are atomic on the
// server and cheap on groups with thousands of members. groupOfNames needs
// at least one member: when revoking the last one the connector adds
// Config.PlaceholderMember (default "cn=nobody") in the same modify. The
// placeholder stays when real members are granted again; it names no account
// and is ignored everywhere. EnsureEntitlement (connectors.EntitlementCatalog,
// for seeding a fresh directory) creates a missing group as
// cn=<name>,GroupsDN holding just the placeholder.
//
// # Disabling
//
// LDAP has no sessions to end: a bind is checked when it happens, so
// DisableAccount always reports SessionsEnded 0. What disabling means is the
// Config.DisableStrategy: "ppolicy" (OpenLDAP, the default) sets
// pwdAccountLockedTime to 000001010000Z, the permanent lock of the ppolicy
// overlay, which needs a default policy with pwdLockout TRUE (ppolicy ignores
// locks otherwise) and which ppolicy lifts whenever the password is changed,
// so disable again after any password reset; "ad" sets the ACCOUNTDISABLE
// bit (0x2) of Active Directory's userAccountControl.
//
// # Listing
//
// ListAccounts pages by username (keyset pagination), not by handing out
// Simple Paged Results cookies: a paged-results cookie is only valid on the
// connection that issued it, and the next page may be asked for on another
// pooled connection, after a reconnect, or by another worker process when
// a Temporal activity is retried. Each call therefore scans the one level
// below PeopleDN with the Simple Paged Results control (RFC 2696) on one
// connection, keeps the PageSize smallest usernames after the one in the
// token, and returns a token that encodes the last username returned.
// Usernames are compared byte-wise, a strict total order because no two
// entries can share a uid value, so every account that exists throughout a
// listing appears exactly once whatever happens between calls. The price is
// a scan of all accounts per page; memory stays bounded by the page size.
//
// # Connections
//
// Connections are pooled (Config.PoolSize) and bound once as Config.BindDN.
// A pooled connection found dead is replaced and the operation retried once;
// every operation is idempotent, so the retry is safe. Each request is bounded
// by Config.RequestTimeout and by the caller's context, whose cancellation
// closes the connection in use.
//
// Errors are *connectors.Error: network failures are Unavailable, time-outs
// Timeout, and LDAP result codes map to Invalid, Permission, Conflict or
// NotFound. Config.BindPassword never appears in errors or in Config's
// printed or logged forms.
package ldap
