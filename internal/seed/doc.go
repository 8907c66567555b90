// Package seed makes a fresh application match the policy's catalogue: it
// creates the entitlements (groups, roles) the policy file declares, through
// connectors that implement connectors.EntitlementCatalog. The demo stack
// and the tests use it; production applications usually have their groups
// already, and their connectors need not support it.
//
// Seeding only ever creates. It never deletes an entitlement the policy no
// longer declares, never changes an existing one and never grants anything.
package seed
