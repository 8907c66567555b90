// Package config is the typed configuration shared by the worker and the CLI:
// defaults for a local stack, each overridable by a documented environment
// variable. Secrets are read here and only handed to connectors; Config's
// String method never prints them.
package config
