// Package activities holds every side effect of the workflows: one struct,
// Activities, carrying its dependencies (connectors, the username store, the
// policy, the access ledger), with one idempotent method per step. Errors
// are classified as Temporal ApplicationErrors whose type is the connector
// error kind, so workflows decide per step which kinds are worth retrying.
// Every activity that changes an application records the change in the
// access ledger (internal/ledger) with the Audit its input carries, and
// refuses to change anything it could not record.
package activities
