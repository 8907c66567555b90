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
// # Verifying
//
// Verify reads a revocation back and changes nothing. A disable is verified
// when the entry carries the strategy's lock and the directory refuses a
// bind as the account because it is locked. Provisio's accounts usually
// have no password, so a refused bind alone proves nothing: Verify binds
// with a random password (an empty one would be an anonymous bind) on a
// fresh connection of its own, outside the pool and closed at once, and
// asks for the reason. OpenLDAP gives it in the Password Policy response
// control (accountLocked) when the ppolicy overlay runs with
// ppolicy_use_lockout; it then refuses before checking the password and
// records no pwdFailureTime, so the bind leaves the entry untouched.
// Without that option, or when the account's password policy has pwdLockout
// FALSE (ppolicy then ignores the lock), the disable is not verified and
// the Detail says what to check. Active Directory names the reason in its
// diagnostic message (data 533, disabled; data 775, locked out), but may
// name it only to a bind with the right password and counts a wrong one
// towards its lockout threshold; Config.SkipVerifyBind makes Verify trust
// the lock attribute alone for such directories.
//
// A revoke is verified with one LDAP Compare of member against the
// account's DN on the group entry, never a read of the member list, so it
// costs the same on a group of 5,000 members as on one of 5. A missing
// group holds nothing; a missing account is checked all the same, since a
// leftover member value would grant the group to an account recreated under
// the same name. A delete is verified when the entry is gone and no group
// under GroupsDN still lists its DN (a search on the member index that
// returns only the groups' names).
//
// # Listing
//
// ListAccounts returns accounts in one documented order: by uid under
// caseIgnoreOrderingMatch, i.e. by sortKey, the value normalised as the
// directory normalises it (case folded, compatibility characters folded
// with NFKC, insignificant spaces removed) and compared byte-wise. A page
// token carries the uid value of the last account listed (keyset
// pagination), so every token continues correctly wherever it is used:
// another pooled connection, another Client, another worker process after
// a Temporal retry. Two entries under PeopleDN cannot share a normalised
// uid (it names them), so the order is strict and every account that
// exists throughout a listing appears exactly once.
//
// Where the directory supports Server Side Sorting (RFC 2891) and Virtual
// List View (OpenLDAP's sssvlv overlay; Active Directory and 389 Directory
// Server have both controls too), the first page opens a cursor: a
// connection of the listing's own on which one search with both controls
// makes the server sort every account once into a snapshot.
// Later pages name the snapshot (VLV context ID) and start at the token's
// value (VLV greaterThanOrEqual), so each costs O(page) on both sides. The
// snapshot lives as long as its connection, so the Client keeps at most
// Config.ListCursors cursors between pages, keyed by a random ID the token
// also carries; the least recently used is closed to make room, an idle one
// after Config.ListCursorIdle, a finished listing's at once, all of them in
// Close. A token whose cursor is gone (evicted, idle, another process, a
// server restart) opens a new snapshot and the server positions it by the
// token's value: one sort again, nothing read twice. Simple Paged Results
// cookies are not used for this: a cookie only continues the exact
// request on the exact connection, so a replayed or foreign token could not
// use it, and positioning by value needs no client-side comparison at all.
//
// When the directory will not sort (no such controls, no ordering rule, or
// every sort slot taken: sssvlv-max), the page falls back to a scan: the
// accounts one level below PeopleDN are read with Simple Paged Results and
// the PageSize smallest after the token are kept, by sortKey. It costs a
// read of every account per page, with memory bounded by the page size.
// sortKey mirrors OpenLDAP's normalisation so that a listing switching
// between the two (sorted first page, server busy for the next) keeps one
// order; Unicode characters whose mapping changed between the Unicode
// versions of OpenLDAP's and Go's tables may be placed differently, and a
// server that collates differently (Active Directory sorts by locale) keeps
// its own order only as long as it sorts.
//
// A page's entitlements come from one search for the groups under GroupsDN
// listing any of the page's DNs as a member, read with their member values
// and matched by normalised DN; see pageEntitlements for why the
// ValuesReturnFilter control (RFC 3876) is not used. A group of M members
// costs O(M) per page that touches it, so the memory of a page is that of
// its accounts plus the largest such group.
//
// # Connections
//
// Connections are pooled (Config.PoolSize) and bound once as Config.BindDN;
// listing cursors and Verify's bind have connections of their own (see
// Listing and Verifying).
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
