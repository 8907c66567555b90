// Package activities holds every side effect of the workflows: one struct,
// Activities, carrying its dependencies (connectors, the username store, the
// policy), with one idempotent method per step. Errors are classified as
// Temporal ApplicationErrors whose type is the connector error kind, so
// workflows decide per step which kinds are worth retrying.
package activities
