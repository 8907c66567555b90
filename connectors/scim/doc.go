// Package scim is the connector for applications that speak SCIM 2.0
// (RFC 7643 schemas, RFC 7644 protocol) over HTTPS with a bearer token.
//
// Accounts are SCIM Users, found by `userName eq "..."` (the value escaped
// as a JSON string, RFC 7644 §3.4.2.2). Create sends the core User schema
// with the enterprise extension's employeeNumber holding the employee ID;
// updates are PATCH "replace" operations for the attributes that differ,
// and never touch "active". Entitlements are SCIM Groups named by
// displayName; a grant or revoke is a PATCH of that one member (op "add"
// with path "members", or op "remove" with path `members[value eq "id"]`),
// never a rewrite of the member list, so concurrent changes by other
// clients are not lost. EnsureEntitlement (connectors.EntitlementCatalog,
// for seeding a fresh application) creates a missing group with POST
// /Groups carrying only its displayName.
//
// SCIM has no session API: DisableAccount sets active to false, which stops
// new logins, and always reports zero sessions ended. Ending live sessions
// is up to the application.
//
// Verify reads a revocation back as the application holds it: the user is
// found by userName and read again by id (GET /Users/{id}), since the
// resource endpoint is authoritative where a search index may lag. A
// disable is verified when "active" reads false (a missing "active" reads
// as active, and a user that is gone is not a disabled one); a delete when
// no user is found; a revoke when the user is not a member of the group,
// read from the user's "groups" attribute, else from the members filter on
// /Groups, and only from a server that refuses that filter from the one
// group's member list. Verify sends only GETs. A server that answers a
// disable with success and keeps the user active is caught here: the
// detail says the user still reads active=true.
//
// Reading is tolerant of common server dialects: booleans sent as strings,
// a missing totalResults (listing then stops on a short page), attribute
// names in any case, a User without the "groups" attribute (memberships are
// then read from the Groups endpoint). Requests are always standard.
//
// Errors are *connectors.Error. HTTP 429 and 503 with a Retry-After are
// retried inside the call when the wait fits Config.MaxRetryAfter, and are
// otherwise Unavailable so the workflow engine retries later. Error texts
// carry the server's SCIM "detail" but never the token or any header.
//
// The HTTP client is injected (Config.HTTPClient): TLS settings, proxies and
// timeouts are the caller's, and tests put wrappers in front of a real
// server.
package scim
