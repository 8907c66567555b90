// Package tclient dials the Temporal frontend the same way for the worker,
// the CLI and the tests, with a clear error when the server is not up, and
// with payload encryption (internal/codec) on the connection when codec
// keys are configured.
package tclient
