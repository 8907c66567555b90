package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/provisio-dev/provisio/internal/app"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/tclient"
	"github.com/provisio-dev/provisio/internal/username"
)

// bench holds what every phase uses: the production worker, the floor
// worker beside it, the client and the applications' connectors.
type bench struct {
	o      options
	cfg    config.Config
	c      client.Client
	deps   *app.Deps
	start  *events.Starter
	log    io.Writer
	floorQ string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// people are every person this run hired, for the clean-up.
	people    []string
	pool      *pgxpool.Pool
	usernames *username.Reserver
}

// Results is the JSON written to bench/results/latest.json.
type Results struct {
	Machine Machine  `json:"machine"`
	Options any      `json:"options"`
	Figures []Figure `json:"figures"`
	Notes   []string `json:"notes,omitempty"`
}

// Machine says where the figures were taken.
type Machine struct {
	Date      time.Time `json:"date"`
	CPU       string    `json:"cpu"`
	Cores     int       `json:"cores"`
	GoVersion string    `json:"goVersion"`
	OS        string    `json:"os"`
}

func newBench(ctx context.Context, o options, logger *slog.Logger, log io.Writer) (_ *bench, err error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	// A queue of its own: a `make run` worker must not take the bench's
	// tasks, and the figures must not include anyone else's.
	cfg.TaskQueue = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	b := &bench{o: o, cfg: cfg, log: log, floorQ: cfg.TaskQueue + "-floor"}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.deps, err = app.NewDeps(ctx, cfg, logger); err != nil {
		return nil, fmt.Errorf("worker dependencies (is the stack up? `make stack`): %w", err)
	}
	if b.c, err = tclient.Dial(ctx, cfg, logger); err != nil {
		return nil, err
	}
	if b.pool, err = pgxpool.New(ctx, cfg.StoreURL); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	b.usernames = username.NewReserver(b.pool)
	people, err := newPeople(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b.start = &events.Starter{Client: b.c, Config: cfg, People: people}

	wctx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	// The floor runs on a worker built with the very options of the
	// production worker, in the same process.
	fw := worker.New(b.c, b.floorQ, app.WorkerOptions(cfg))
	fw.RegisterWorkflow(FloorWorkflow)
	fw.RegisterActivity(FloorActivity)
	if err := fw.Start(); err != nil {
		return nil, fmt.Errorf("start floor worker: %w", err)
	}
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		<-wctx.Done()
		fw.Stop()
	}()
	go func() {
		defer b.wg.Done()
		if err := app.ServeDeps(wctx, b.c, cfg, b.deps, logger); err != nil {
			logger.Error("worker stopped", "error", err)
		}
	}()
	return b, nil
}

func (b *bench) close() {
	if b.cancel != nil {
		b.cancel()
		b.wg.Wait()
	}
	if b.c != nil {
		b.c.Close()
	}
	if b.deps != nil {
		b.deps.Close()
	}
	if b.pool != nil {
		b.pool.Close()
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  %s\n", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
}

func (b *bench) skipped(phase string) bool {
	for _, s := range strings.Split(b.o.skip, ",") {
		if strings.TrimSpace(s) == phase {
			return true
		}
	}
	return false
}

func (b *bench) run(ctx context.Context) (Results, error) {
	res := Results{Machine: machine(), Options: map[string]int{
		"joiners": b.o.joiners, "leavers": b.o.leavers, "accounts": b.o.accounts, "floorRuns": b.o.floorN,
	}}
	defer func() {
		if !b.o.keep {
			b.cleanup(context.WithoutCancel(ctx))
		}
	}()
	begin := time.Now()
	fanOut := len(b.deps.Activities.Connectors)
	var floor floorFigures
	if !b.skipped("floor") {
		b.logf("floor: %d no-op runs of fan-out %d", b.o.floorN, fanOut)
		var err error
		if floor, err = b.measureFloor(ctx, fanOut); err != nil {
			return res, fmt.Errorf("floor: %w", err)
		}
		res.Figures = append(res.Figures,
			figure("floor throughput", floor.throughput, "runs/s", 0),
			figure("floor latency p50", ms(floor.latency.P50), "ms", 0),
			figure("floor latency p99", ms(floor.latency.P99), "ms", 0),
		)
	}
	var hired []hire
	if !b.skipped("joiners") {
		b.logf("bulk joiners: %d hires into %d applications", b.o.joiners, fanOut)
		var rate float64
		var err error
		if hired, rate, err = b.bulkJoiners(ctx, b.o.joiners); err != nil {
			return res, fmt.Errorf("bulk joiners: %w", err)
		}
		f := figure("bulk joiners", rate, "hires/s", floor.throughput)
		if floor.throughput > 0 {
			f = f.target(">= 0.7x floor throughput", f.Ratio >= 0.7)
		}
		res.Figures = append(res.Figures, f)
	}
	if len(hired) >= 2*b.o.leavers {
		var idle latencies
		if !b.skipped("killswitch") {
			b.logf("kill switch: %d terminations one after another", b.o.leavers)
			var err error
			if idle, err = b.killSwitch(ctx, hired[:b.o.leavers]); err != nil {
				return res, fmt.Errorf("kill switch: %w", err)
			}
			res.Figures = append(res.Figures,
				figure("kill switch p50", ms(idle.P50), "ms", ms(floor.latency.P50)),
				figure("kill switch p95", ms(idle.P95), "ms", ms(floor.latency.P95)),
				withTarget(figure("kill switch p99", ms(idle.P99), "ms", ms(floor.latency.P99)), "<= 2x floor p99", func(f Figure) bool { return f.Floor > 0 && f.Ratio <= 2 }),
			)
		}
		if !b.skipped("loaded") {
			b.logf("kill switch under load: %d terminations while %d hires run", b.o.leavers, b.o.joiners)
			loaded, during, err := b.killSwitchUnderLoad(ctx, hired[b.o.leavers:2*b.o.leavers])
			if err != nil {
				return res, fmt.Errorf("kill switch under load: %w", err)
			}
			f := figure("kill switch p99 under load", ms(loaded.P99), "ms", ms(floor.latency.P99)).
				target("< 1000 ms", loaded.P99 < time.Second)
			f.Note = fmt.Sprintf("idle p99 %.0f ms; %d of %d leavers finished while the import ran; offboardings run at task priority %d, ahead of the joiners' queue",
				ms(idle.P99), during, b.o.leavers, events.PriorityRevocation)
			res.Figures = append(res.Figures, figure("kill switch p50 under load", ms(loaded.P50), "ms", ms(floor.latency.P50)), f)
		}
	}
	res.Notes = append(res.Notes, b.cpuNote(begin))
	if !b.skipped("listing") {
		figs, err := b.listing(ctx, b.o.accounts)
		if err != nil {
			return res, fmt.Errorf("listing: %w", err)
		}
		res.Figures = append(res.Figures, figs...)
	}
	return res, nil
}

func withTarget(f Figure, text string, ok func(Figure) bool) Figure { return f.target(text, ok(f)) }

func (r Results) write(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

func machine() Machine {
	m := Machine{Date: time.Now().UTC().Truncate(time.Second), Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return m
}

// cpuNote says how much of the machine the bench process (the worker
// included) used while the lifecycle figures were taken: when it is a small
// share, the time goes to the Temporal server and the applications.
func (b *bench) cpuNote(begin time.Time) string {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return "process CPU time unavailable: " + err.Error()
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	wall := time.Since(begin)
	return fmt.Sprintf("the bench process (worker, floor worker and checks) used %.0f s of CPU in %.0f s (%.0f%% of one core, %.0f%% of the machine's %d cores): the rest of the load is the Temporal server (SQLite), slapd, PostgreSQL and the SCIM app",
		cpu.Seconds(), wall.Seconds(), 100*cpu.Seconds()/wall.Seconds(), 100*cpu.Seconds()/wall.Seconds()/float64(runtime.NumCPU()), runtime.NumCPU())
}
