// Command worker runs the provisioning workflows and activities: it connects
// to Temporal, PostgreSQL and every target application from the environment
// (see README.md) and serves until SIGINT or SIGTERM.
package main
