package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/ldap"
	"github.com/provisio-dev/provisio/connectors/postgres"
	"github.com/provisio-dev/provisio/connectors/scim"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/reconcile"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/internal/tclient"
	"github.com/provisio-dev/provisio/internal/username"
	"github.com/provisio-dev/provisio/workflows"
)

// Register registers every workflow and the activities with a worker or a
// test environment.
func Register(r worker.Registry, a *activities.Activities) {
	RegisterWorkflows(r)
	r.RegisterActivity(a)
}

// RegisterWorkflows registers every workflow type; the replay test uses it
// alone, so a workflow missing here fails replay as well as the worker.
func RegisterWorkflows(r worker.WorkflowRegistry) {
	r.RegisterWorkflow(workflows.Onboarding)
	r.RegisterWorkflow(workflows.Offboarding)
	r.RegisterWorkflow(workflows.TemporaryAccess)
	r.RegisterWorkflow(workflows.Mover)
	r.RegisterWorkflow(workflows.PersonEvents)
	r.RegisterWorkflow(workflows.Reconcile)
}

// Deps are the long-lived dependencies of the activities; Close releases
// them.
type Deps struct {
	Activities *activities.Activities
	// Revocation serves the revocation task queue (offboardings): the same
	// activities on connectors and a store pool of their own.
	Revocation *activities.Activities
	closers    []func()
}

// Close releases connections in reverse order of opening.
func (d *Deps) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// NewDeps connects the store, the policy and every connector. On error,
// whatever was opened is closed again.
func NewDeps(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *Deps, err error) {
	d := &Deps{Activities: &activities.Activities{}}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	pool, err := store.Open(ctx, cfg.StoreURL)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	d.closers = append(d.closers, pool.Close)
	d.Activities.Usernames = username.NewReserver(pool)
	d.Activities.Ledger = ledger.New(pool)
	d.Activities.Reconciliation = &activities.Reconciliation{Store: reconcile.NewStore(pool)}

	planner, err := newPolicyPlanner(ctx, cfg.PolicyFile, logger)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, planner.stop)
	d.Activities.Planner = planner
	d.Activities.Policy = planner.w

	dir, err := newDirectory(pool, cfg.RosterFile, logger)
	if err != nil {
		return nil, err
	}
	d.Activities.Directory = dir

	conns, closeConns, err := NewConnectors(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, closeConns)
	d.Activities.Connectors = conns

	// Revocation gets connectors and a store pool of its own, so a
	// leaver's disables never queue behind a mass hire's calls for the
	// same few connections.
	revPool, err := pgxpool.New(ctx, cfg.StoreURL)
	if err != nil {
		return nil, fmt.Errorf("store (revocation): %w", err)
	}
	d.closers = append(d.closers, revPool.Close)
	revConns, closeRevConns, err := NewConnectors(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, closeRevConns)
	rev := *d.Activities
	rev.Connectors = revConns
	rev.Usernames = username.NewReserver(revPool)
	rev.Ledger = ledger.New(revPool)
	d.Revocation = &rev
	return d, nil
}

// NewConnectors builds the connector of every target application from cfg,
// keyed by connector name, and a function that closes them in reverse order
// of opening. On error, whatever was opened is closed again. NewDeps and the
// demo seeding command share it, so both talk to the same applications.
func NewConnectors(ctx context.Context, cfg config.Config) (_ map[string]connectors.Connector, closeAll func(), err error) {
	conns := map[string]connectors.Connector{}
	var opened []connectors.Connector
	closeAll = func() {
		for i := len(opened) - 1; i >= 0; i-- {
			_ = opened[i].Close()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	add := func(c connectors.Connector) {
		conns[c.Name()] = c
		opened = append(opened, c)
	}
	lc, err := ldap.New(ctx, ldap.Config{
		URL: cfg.LDAP.URL, BindDN: cfg.LDAP.BindDN, BindPassword: cfg.LDAP.Password,
		PeopleDN: cfg.LDAP.PeopleDN, GroupsDN: cfg.LDAP.GroupsDN, StartTLS: cfg.LDAP.StartTLS,
		SkipVerifyBind: cfg.LDAP.SkipVerifyBind,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ldap connector: %w", err)
	}
	add(lc)
	pc, err := postgres.New(ctx, postgres.Config{URL: cfg.Postgres.URL})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres connector: %w", err)
	}
	add(pc)
	sc, err := scim.New(scim.Config{
		BaseURL: cfg.SCIM.URL, Token: cfg.SCIM.Token,
		HTTPClient: &http.Client{Timeout: 20 * time.Second},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scim connector: %w", err)
	}
	add(sc)
	return conns, closeAll, nil
}

// Run connects everything and serves the task queue until ctx ends.
func Run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	deps, err := NewDeps(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer deps.Close()
	c, err := tclient.Dial(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	return ServeDeps(ctx, c, cfg, deps, logger)
}

// WorkerOptions are the production worker's settings; the benchmark's floor
// worker uses the same, so the two are compared like for like.
func WorkerOptions(cfg config.Config) worker.Options {
	return worker.Options{WorkerStopTimeout: cfg.ShutdownTimeout}
}

// Serve runs the workers of cfg.TaskQueue and of its revocation queue
// (workflows.RevocationTaskQueue) with the same activities until ctx ends,
// then stops them, letting running activities finish within
// cfg.ShutdownTimeout.
func Serve(ctx context.Context, c client.Client, cfg config.Config, a *activities.Activities, logger *slog.Logger) error {
	return serve(ctx, c, cfg, a, a, logger)
}

// ServeDeps is Serve with the revocation queue served by d.Revocation, the
// production wiring.
func ServeDeps(ctx context.Context, c client.Client, cfg config.Config, d *Deps, logger *slog.Logger) error {
	rev := d.Revocation
	if rev == nil {
		rev = d.Activities
	}
	return serve(ctx, c, cfg, d.Activities, rev, logger)
}

// serve runs one worker per queue. Offboardings start on the revocation
// queue: its own pollers and slots mean a leaver's tasks are picked up
// even while the main queue's worker is saturated with joiners.
func serve(ctx context.Context, c client.Client, cfg config.Config, main, rev *activities.Activities, logger *slog.Logger) error {
	revQueue := workflows.RevocationTaskQueue(cfg.TaskQueue)
	w := worker.New(c, cfg.TaskQueue, WorkerOptions(cfg))
	Register(w, main)
	rw := worker.New(c, revQueue, WorkerOptions(cfg))
	Register(rw, rev)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	if err := rw.Start(); err != nil {
		w.Stop()
		return fmt.Errorf("start revocation worker: %w", err)
	}
	logger.Info("Worker started", "taskQueue", cfg.TaskQueue, "revocationQueue", revQueue, "temporal", cfg.TemporalAddress)
	<-ctx.Done()
	logger.Info("Worker stopping")
	var wg sync.WaitGroup
	for _, x := range []worker.Worker{w, rw} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.Stop()
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
