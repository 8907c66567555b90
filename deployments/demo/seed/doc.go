// Command seed creates in the demo applications (LDAP groups, PostgreSQL
// group roles, SCIM groups) every entitlement the policy file declares, so
// a fresh stack can grant what the policy plans. It reads the same
// environment as the worker (see internal/config) and connects exactly as
// the worker does; --policy overrides PROVISIO_POLICY. It only creates:
// running it again changes nothing.
//
//	go run ./deployments/demo/seed [--policy deployments/demo/policy.yaml]
package main
