// Package workflows holds the deterministic orchestration of a person's
// access: one file per workflow, each with an XInput/XResult pair, the IDs
// built from business keys, the typed search attributes operators filter on,
// and the activity options. No I/O, clocks, randomness or map-order
// dependence may live here: side effects belong in package activities.
package workflows
