package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/internal/webhook"
)

// pruneEvery is how often serve deletes signatures too old to replay.
const pruneEvery = time.Minute

func newServeCmd(opts *rootOptions) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HR webhook: accept signed hire, move, terminate and request-access events over HTTP",
		Long: `Serve the HR webhook until interrupted (SIGINT or SIGTERM: requests in
flight finish, then it stops).

HR systems POST one event per request to /v1/events, the same JSON that
"-f" files hold, e.g. {"type": "terminate", "employee_id": "E100001"}, with

  X-Provisio-Timestamp: <unix seconds>
  X-Provisio-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

Events are validated and started exactly as the CLI starts them. Answers:
202 with the receipt (workflowId, outcome: started, queued, existing or
rescheduled), 400 with the reason for bad JSON or an invalid event, 401 for
a bad or missing signature, a timestamp more than 5 minutes off, or a
replay, 413 for a body over 1 MiB, 503/500 for trouble on the server's side.
GET /healthz answers 200.

The webhook is a command of its own rather than part of the worker: the
worker then needs no inbound network access at all, and the endpoint HR
talks to can be scaled, restarted and exposed (behind TLS) on its own.
Several instances may run: replays are remembered in PostgreSQL.

Configuration: PROVISIO_WEBHOOK_SECRET (required, at least 32 bytes; never
logged), PROVISIO_WEBHOOK_ADDR (default 127.0.0.1:8290; --addr overrides),
and the usual TEMPORAL_*, PROVISIO_DB_URL/PG_URL, PROVISIO_TASK_QUEUE and
PROVISIO_ROSTER. Serve plain HTTP on loopback only; put a TLS proxy in front
to expose it.`,
		Example: `  PROVISIO_WEBHOOK_SECRET=$(openssl rand -hex 32) starter serve
  starter serve --addr 0.0.0.0:8290`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), opts, addr)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "host:port to listen on (default PROVISIO_WEBHOOK_ADDR or 127.0.0.1:8290)")
	return cmd
}

func runServe(ctx context.Context, opts *rootOptions, addr string) error {
	cfg, err := opts.config()
	if err != nil {
		return err
	}
	if addr != "" {
		cfg.Webhook.Addr = addr
	}
	if err := cfg.Webhook.CheckSecret(); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(opts.errOut, nil))
	pool, err := store.Open(ctx, cfg.StoreURL)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer pool.Close()
	c, err := opts.dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	replays := webhook.NewPGReplays(pool)
	h := &webhook.Handler{
		Secret:  []byte(cfg.Webhook.Secret),
		Starter: &events.Starter{Client: c, Config: cfg, People: newStorePeople(pool, cfg.RosterFile)},
		Replays: replays,
		Logger:  logger,
	}
	ln, err := net.Listen("tcp", cfg.Webhook.Addr)
	if err != nil {
		return fmt.Errorf("webhook: listen on %s (PROVISIO_WEBHOOK_ADDR): %w", cfg.Webhook.Addr, err)
	}
	logger.Info("webhook listening", "addr", ln.Addr().String(), "path", webhook.EventsPath,
		"temporal", cfg.TemporalAddress, "queue", cfg.TaskQueue)
	pctx, stopPruning := context.WithCancel(ctx)
	pruned := make(chan struct{})
	go func() {
		defer close(pruned)
		pruneReplays(pctx, replays, logger)
	}()
	// The pruner stops before the pool it uses closes.
	defer func() {
		stopPruning()
		<-pruned
	}()
	return webhook.Serve(ctx, ln, webhook.NewMux(h), logger)
}

// pruneReplays deletes expired signatures until ctx ends; a failure is
// logged and tried again, as replays stay refused either way.
func pruneReplays(ctx context.Context, replays *webhook.PGReplays, logger *slog.Logger) {
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := replays.Prune(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("prune webhook signatures", "error", err)
		}
	}
}
