// Package roster keeps the last synced state of each HR feed in PostgreSQL
// and works out the joiner, mover and leaver events that a new export
// implies.
//
// Read bounds and parses an export; Diff compares it with the stored state
// and is pure (no I/O, no clock), so every rule of the sync is unit-tested
// without a database; Store holds the state. Starting the events is the
// caller's business (starter sync, through internal/events).
package roster
