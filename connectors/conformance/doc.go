// Package conformance is the shared test suite every connector must pass
// against its real server: idempotent create, grant, revoke and delete,
// disable that really blocks login, paged listing, and hostile input that is
// either stored exactly or refused as invalid.
package conformance
