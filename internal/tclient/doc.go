// Package tclient dials the Temporal frontend the same way for the worker,
// the CLI and the tests, with a clear error when the server is not up.
package tclient
