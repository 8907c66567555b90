// Package scimapp is the SCIM 2.0 demo application: a STAND-IN for a SaaS
// product that provisio provisions through SCIM. It is not a product and not
// a reference SCIM server; it exists so the SCIM connector, the workflows and
// the demos have a real SCIM endpoint to talk to.
//
// The protocol (routing, schema validation, filter and PATCH path parsing,
// list and error responses) comes from the third-party library
// github.com/elimity-com/scim. This package supplies what the library leaves
// to its users: the resource handlers for Users (core schema plus the
// enterprise extension) and Groups, their storage in PostgreSQL (tables
// users, groups and members in a database and schema of their own, so the
// data survives restarts), bearer-token authentication and a "/" page that
// says what this is.
//
// Gaps of the library filled here:
//   - Filters are parsed and validated by the library but string values are
//     handed over still JSON-escaped (`"a\"b"` arrives as a\"b); they are
//     unescaped before use (see unescapeFilter).
//   - The library does not apply PATCH operations or evaluate filters
//     against storage: patch.go applies the validated operations to a
//     resource document, and equality filters on userName, displayName, id,
//     externalId and members[value eq "..."] run as SQL; any other valid
//     filter is evaluated with the library's own matcher over all rows.
//   - The library does not enforce uniqueness or read-only attributes:
//     unique indexes make a duplicate userName or group displayName a 409,
//     and patching a read-only attribute (such as a user's groups) is a 400.
//
// SCIM has no login; the app's own rule, used by the connector's
// conformance tests, is that an active user may log in (Store.CanLogin).
package scimapp
