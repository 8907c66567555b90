// Command temporal-launcher runs provisio's local Temporal stack in one process: a real
// Temporal server (go.temporal.io/server) that keeps its persistence and visibility in a
// SQLite file, and the Temporal Web UI (github.com/temporalio/ui-server) pointed at it.
//
// It lives in its own Go module (deployments/temporal) so that the main provisio module never
// depends on the Temporal server; deployments/temporal/temporal.sh builds and runs it for
// `make stack`, and tests may start extra instances on free ports with their own database.
//
// At every start the launcher:
//   - creates the SQLite schema, but only when the database file does not exist yet, so
//     workflow state survives restarts;
//   - makes sure the namespace (--namespace, "default") exists with the wanted retention;
//   - registers the custom search attributes listed in search_attributes.txt (embedded in the
//     binary; one "Name Type" per line, '#' starts a comment) that the namespace lacks.
//
// Every listening port comes from a flag, so several launchers can run side by side:
//
//	--port           frontend gRPC (default 7233)
//	--history-port   history gRPC (default --port+1)
//	--matching-port  matching gRPC (default --port+2)
//	--worker-port    internal worker service gRPC (default --port+3)
//	--http-port      frontend HTTP API (default 0: disabled)
//	--metrics-port   Prometheus metrics (default 0: disabled)
//	--ui-port        Web UI (default 8233, 0 disables the UI)
//
// The launcher logs JSON lines to stderr (--log-level, default info) and shuts down cleanly
// on SIGINT or SIGTERM, exiting 0.
package main
