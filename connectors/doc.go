// Package connectors defines the one small contract every target system
// implements (Connector), the request and response structs of each call, and
// the typed errors that tell a caller whether a retry can help.
//
// Each target system lives in its own sub-package (ldap, postgres, scim).
// Nothing here talks to a network; the conformance sub-package holds the
// shared test suite every connector must pass against its real server.
package connectors
