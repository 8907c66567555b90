// Package username turns a person's name into a login name and reserves it.
//
// Derive is pure: it transliterates given and family names to lowercase
// ASCII and joins them as "given.family" (José Muñoz → jose.munoz), falling
// back to the employee ID when nothing Latin remains. Candidates yields the
// alternatives tried on a collision (jose.munoz2, jose.munoz3, ...).
//
// Reserver is the only part that does I/O: it records one username per
// employee in the project's own store (table usernames, created by
// internal/store migrations), so a name is derived once, stays stable across
// rehires and name changes, and two concurrent hires with the same name get
// different usernames. Target systems are never consulted here; connectors
// report a clash with an existing foreign account as a Conflict.
package username
