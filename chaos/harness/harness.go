package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/app"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/seed"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/internal/tclient"
	"github.com/provisio-dev/provisio/internal/username"
	"github.com/provisio-dev/provisio/policy"
)

// Scenario says how much load a run drives and which faults it injects.
type Scenario struct {
	// Hires, Moves and Leavers are the HR events of the load: every
	// person is hired, Moves of them move to another job right after the
	// hire (the move waits for the onboarding), Leavers others are
	// terminated once onboarded.
	Hires, Moves, Leavers int
	// Doomed are hired, before the load, while the PostgreSQL connector's
	// role has lost SUPERUSER: their onboardings must fail and compensate.
	Doomed int
	// WorkerKills are SIGKILLs of the worker at random moments.
	WorkerKills int
	// LauncherRestarts stop and restart the Temporal server.
	LauncherRestarts int
	// LDAPOutage and PostgresOutage are how long slapd, then PostgreSQL,
	// are stopped mid-run; zero skips the outage.
	LDAPOutage, PostgresOutage time.Duration
	// Spread is how long the hires take to send, evenly; the faults fall
	// within it and a little after.
	Spread time.Duration
	// Settle bounds the wait for every run to finish after the faults.
	Settle time.Duration
}

// Full is `make chaos`: the figures of issue 8.
func Full() Scenario {
	return Scenario{
		Hires: 500, Moves: 100, Leavers: 100, Doomed: 10,
		WorkerKills: 5, LauncherRestarts: 1,
		LDAPOutage: 30 * time.Second, PostgresOutage: 30 * time.Second,
		Spread: 150 * time.Second, Settle: 20 * time.Minute,
	}
}

// Short is the version inside `make test`: every kind of fault but the
// PostgreSQL outage, on a few people, in about two minutes.
func Short() Scenario {
	return Scenario{
		Hires: 30, Moves: 5, Leavers: 5, Doomed: 2,
		WorkerKills: 2, LauncherRestarts: 1,
		LDAPOutage: 20 * time.Second,
		Spread:     20 * time.Second, Settle: 5 * time.Minute,
	}
}

// Validate refuses a scenario that cannot run, naming the field.
func (sc Scenario) Validate() error {
	var errs []error
	if sc.Hires < 1 {
		errs = append(errs, errors.New("hires: at least 1"))
	}
	if sc.Moves < 0 || sc.Leavers < 0 || sc.Doomed < 0 || sc.WorkerKills < 0 || sc.LauncherRestarts < 0 {
		errs = append(errs, errors.New("moves, leavers, doomed, worker kills and launcher restarts cannot be negative"))
	}
	if sc.Moves+sc.Leavers > sc.Hires {
		errs = append(errs, fmt.Errorf("moves + leavers (%d) exceed hires (%d): each person moves or leaves, not both", sc.Moves+sc.Leavers, sc.Hires))
	}
	if (sc.LDAPOutage > 0 || sc.PostgresOutage > 0) && sc.Leavers == 0 {
		errs = append(errs, errors.New("leavers: an outage needs at least one leaver in flight to show NeedsAttention"))
	}
	if sc.LDAPOutage < 0 || sc.PostgresOutage < 0 || sc.Spread < 0 || sc.Settle <= 0 {
		errs = append(errs, errors.New("durations: outages and spread cannot be negative, settle must be positive"))
	}
	return errors.Join(errs...)
}

// Options are the harness's surroundings.
type Options struct {
	// RepoRoot is the module root (the worker is built from it, slapd.sh
	// and the launcher found through it).
	RepoRoot string
	// Dir holds the private instances' data and logs; empty makes a
	// temporary one, removed after a run without differences.
	Dir string
	// Keep keeps Dir even after a clean run.
	Keep bool
	// SharedPGURL is the shared PostgreSQL the in-process SCIM app keeps
	// its data on (PG_URL of `make stack`).
	SharedPGURL string
	// PolicyFile is the policy the worker runs and the expectations are
	// planned with; default the demo policy.
	PolicyFile string
	// Seed makes the random moments and the ID block repeatable; 0 picks
	// one (printed in the report).
	Seed uint64
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// connectorRole is the PostgreSQL role the worker's connector logs in as;
// the partial failure takes SUPERUSER from it.
const connectorRole = "provisio_connector"

// harness is one run.
type harness struct {
	opts  Options
	sc    Scenario
	rng   *rand.Rand
	begin time.Time
	dir   string

	pg       *postgresServer
	admin    *pgxpool.Pool
	store    *pgxpool.Pool
	slapd    *slapdServer
	scim     *scimServer
	launcher *launcher
	worker   *supervisor

	cfg        config.Config
	policy     *policy.Policy
	conns      map[string]connectors.Connector
	closeConns func()
	client     client.Client
	starter    *events.Starter
	known      *knownPeople
	ledger     *ledger.Store
	usernames  *username.Reserver

	subjects []*subject
	retries  atomic.Int64

	mu     sync.Mutex
	report *Report
}

// Run sets up the private instances, drives the scenario with its faults,
// waits for every run and compares. It returns an error only when the run
// could not be carried out; differences are in the report (Report.OK).
func Run(ctx context.Context, opts Options, sc Scenario) (*Report, error) {
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if opts.Seed == 0 {
		opts.Seed = rand.Uint64()
	}
	if opts.PolicyFile == "" {
		opts.PolicyFile = filepath.Join(opts.RepoRoot, config.DefaultPolicyFile)
	}
	if opts.SharedPGURL == "" {
		opts.SharedPGURL = config.DefaultPGURL
	}
	h := &harness{opts: opts, sc: sc, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), begin: time.Now(),
		report: &Report{Seed: opts.Seed, Scenario: sc}}
	defer func() { h.report.Elapsed = time.Since(h.begin) }()
	err := h.run(ctx)
	h.close(err)
	return h.report, err
}

func (h *harness) run(ctx context.Context) error {
	var err error
	if h.policy, err = policy.Load(h.opts.PolicyFile); err != nil {
		return fmt.Errorf("load the policy: %w", err)
	}
	if h.subjects, err = generate(h.sc, h.rng); err != nil {
		return err
	}
	// Plan everyone before anything starts: a job that needs approval
	// would hang the run.
	for _, s := range h.subjects {
		if _, err := expected(h.policy, s, ""); err != nil {
			return err
		}
	}
	if err := h.setup(ctx); err != nil {
		return fmt.Errorf("set up the private instances: %w", err)
	}
	h.mu.Lock()
	h.begin = time.Now()
	h.mu.Unlock()
	h.logf("setup done in %s (work dir %s, seed %d)", h.report.Setup.Round(100*time.Millisecond), h.dir, h.opts.Seed)
	if err := h.partialFailure(ctx); err != nil {
		return err
	}
	if err := h.load(ctx); err != nil {
		return err
	}
	if err := h.settle(ctx); err != nil {
		return err
	}
	return h.verify(ctx)
}

// logf writes one progress line, stamped with the time since the faults'
// clock started.
func (h *harness) logf(format string, args ...any) {
	if h.opts.Log == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(h.opts.Log, "[%7.1fs] %s\n", time.Since(h.begin).Seconds(), fmt.Sprintf(format, args...))
}

// inject records a fault (or its end) in the report and the log.
func (h *harness) inject(format string, args ...any) {
	what := fmt.Sprintf(format, args...)
	h.mu.Lock()
	h.report.Injected = append(h.report.Injected, Injection{At: time.Since(h.begin), What: what})
	h.mu.Unlock()
	h.logf("FAULT %s", what)
}

// problem records something that is not as it should be besides the
// accounts (a run that did not finish, a flag that was not raised).
func (h *harness) problem(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	h.mu.Lock()
	h.report.Problems = append(h.report.Problems, p)
	h.mu.Unlock()
	h.logf("PROBLEM %s", p)
}

func (h *harness) setup(ctx context.Context) error {
	start := time.Now()
	defer func() { h.report.Setup = time.Since(start) }()
	h.dir = h.opts.Dir
	if h.dir == "" {
		d, err := os.MkdirTemp("", "provisio-chaos-")
		if err != nil {
			return err
		}
		h.dir = d
	} else if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return err
	}
	// The private cluster runs as the postgres user, who must reach its
	// directory.
	if err := os.Chmod(h.dir, 0o755); err != nil {
		return err
	}
	h.report.Dir = h.dir
	var err error
	if h.launcher, err = newLauncher(h.opts.RepoRoot, h.dir); err != nil {
		return err
	}
	workerBin := filepath.Join(h.dir, "worker")
	// The slow parts side by side: the Temporal server's start, the
	// worker's build, and the rest.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Add(3)
	go func() { defer wg.Done(); errs[0] = h.launcher.start(ctx) }()
	go func() { defer wg.Done(); errs[1] = buildWorker(ctx, h.opts.RepoRoot, workerBin) }()
	go func() { defer wg.Done(); errs[2] = h.setupApplications(ctx) }()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Payload encryption is the environment's, as for any worker: with
	// codec keys set (stack.env names the dev key file), the worker and
	// the harness's client both encrypt.
	env, err := config.FromEnv()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	h.cfg = config.Config{
		TemporalAddress: h.launcher.address(), TemporalNamespace: config.DefaultNamespace,
		TaskQueue: "chaos-" + randomHex(4), UIURL: config.DefaultUIURL,
		StoreURL: h.pg.url("postgres", config.StoreDatabase), PolicyFile: h.opts.PolicyFile,
		RosterFile: filepath.Join(h.opts.RepoRoot, config.DefaultRosterFile),
		LDAP:       h.ldapConfig(), Postgres: config.Postgres{URL: h.pg.url(connectorRole, "postgres")},
		SCIM: config.SCIM{URL: h.scim.url, Token: h.scim.token}, ShutdownTimeout: 5 * time.Second,
		Codec: env.Codec,
	}
	if h.client, err = tclient.Dial(ctx, h.cfg, slog.New(slog.DiscardHandler)); err != nil {
		return fmt.Errorf("dial the private Temporal server: %w", err)
	}
	h.known = &knownPeople{m: map[string]bool{}}
	h.starter = &events.Starter{Client: h.client, Config: h.cfg, People: h.known}
	h.worker = startSupervisor(workerBin, filepath.Join(h.dir, "worker.log"), workerEnv(h.cfg), h.logf)
	return h.worker.waitUp(ctx, 2*time.Second)
}

func (h *harness) ldapConfig() config.LDAP {
	base := config.DefaultLDAPBase
	return config.LDAP{URL: h.slapd.url(), BindDN: "cn=admin," + base, Password: h.slapd.password, BaseDN: base,
		PeopleDN: "ou=people," + base, GroupsDN: "ou=groups," + base}
}

// setupApplications starts the private PostgreSQL (target application and
// store), slapd and the SCIM app, and creates the policy's entitlements in
// them as `make stack` does for the shared ones.
func (h *harness) setupApplications(ctx context.Context) error {
	var err error
	if h.pg, err = startPostgres(ctx, filepath.Join(h.dir, "pg")); err != nil {
		return err
	}
	if h.admin, err = pgxpool.New(ctx, h.pg.url("postgres", "postgres")); err != nil {
		return err
	}
	if _, err := h.admin.Exec(ctx, "CREATE ROLE "+connectorRole+" LOGIN SUPERUSER"); err != nil {
		return fmt.Errorf("create the connector's role: %w", err)
	}
	if h.store, err = store.Open(ctx, h.pg.url("postgres", config.StoreDatabase)); err != nil {
		return err
	}
	h.ledger, h.usernames = ledger.New(h.store), username.NewReserver(h.store)
	if h.slapd, err = startSlapd(ctx, h.opts.RepoRoot, filepath.Join(h.dir, "slapd"), "chaos-"+randomHex(6)); err != nil {
		return err
	}
	if h.scim, err = startSCIM(ctx, h.opts.SharedPGURL); err != nil {
		return err
	}
	// The harness reads the applications as the worker writes them, but
	// through the cluster's superuser, so a listing works while the
	// connector's role is weakened.
	cfg := config.Config{LDAP: h.ldapConfig(), Postgres: config.Postgres{URL: h.pg.url("postgres", "postgres")},
		SCIM: config.SCIM{URL: h.scim.url, Token: h.scim.token}}
	if h.conns, h.closeConns, err = app.NewConnectors(ctx, cfg); err != nil {
		return err
	}
	return seed.Entitlements(ctx, h.policy, h.conns, func(string, ...any) {})
}

// close stops everything the run started, in the reverse order, and
// removes the work directory unless the run failed or Keep is set.
func (h *harness) close(runErr error) {
	if h.worker != nil {
		h.worker.stop()
		h.report.WorkerStarts, _ = h.worker.counts()
	}
	if h.client != nil {
		h.client.Close()
	}
	if h.launcher != nil {
		h.launcher.stop()
	}
	if h.closeConns != nil {
		h.closeConns()
	}
	if h.scim != nil {
		h.scim.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if h.slapd != nil {
		if err := h.slapd.run(ctx, "stop"); err != nil {
			h.logf("cleanup: %v", err)
		}
	}
	if h.store != nil {
		h.store.Close()
	}
	if h.admin != nil {
		h.admin.Close()
	}
	if h.pg != nil {
		if err := h.pg.stop(ctx); err != nil {
			h.logf("cleanup: %v", err)
		}
	}
	if h.dir == "" {
		return
	}
	if runErr != nil || !h.report.OK() || h.opts.Keep {
		h.report.Kept = true
		return
	}
	if h.opts.Dir == "" {
		_ = os.RemoveAll(h.dir)
	}
}

// knownPeople answers events.People for the generated people: known once
// their hire was accepted, so a move or termination never waits for a
// roster the harness does not keep.
type knownPeople struct {
	mu sync.Mutex
	m  map[string]bool
}

func (k *knownPeople) Known(_ context.Context, employeeID string) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[employeeID], nil
}

func (k *knownPeople) add(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[id] = true
}
