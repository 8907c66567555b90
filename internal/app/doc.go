// Package app wires the worker: it builds the connectors, the username
// store and the policy from config, registers every workflow and activity,
// and runs the worker until its context ends. Production (worker/) and the
// integration tests share it, so what is tested is what runs.
package app
