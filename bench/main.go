// Command bench measures, on the real local stack, how fast a leaver's
// access is gone and how fast a mass hire is done, next to Temporal's own
// floor (a no-op workflow of the same fan-out on the same server and worker
// settings), so every figure is a ratio that holds on a noisy machine.
//
// It is not part of `make test`: run it with `make bench`. It prints one
// table and writes the same figures as JSON (bench/results/latest.json).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// options are the benchmark's knobs; the defaults are the figures.
type options struct {
	joiners  int
	leavers  int
	accounts int
	floorN   int
	out      string
	skip     string
	keep     bool
	cpuprof  string
}

func parseOptions(args []string, errOut io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.IntVar(&o.joiners, "joiners", 2000, "new hires in the bulk import (and in the background import of the loaded kill switch)")
	fs.IntVar(&o.leavers, "leavers", 200, "terminations timed one after another, idle and under load")
	fs.IntVar(&o.accounts, "accounts", 100000, "accounts seeded in LDAP and PostgreSQL for the listing figure")
	fs.IntVar(&o.floorN, "floor-runs", 0, "floor runs for throughput (default: --joiners)")
	fs.StringVar(&o.out, "out", "bench/results/latest.json", "where to write the JSON results")
	fs.StringVar(&o.skip, "skip", "", "comma-separated phases to skip: floor,joiners,killswitch,loaded,listing")
	fs.StringVar(&o.cpuprof, "cpuprofile", "", "write a CPU profile of the whole run (worker included) to this file, for `go tool pprof`")
	fs.BoolVar(&o.keep, "keep", false, "keep the generated people's accounts and runs afterwards (default: clean up)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.floorN == 0 {
		o.floorN = o.joiners
	}
	switch {
	case o.joiners < 1, o.leavers < 1, o.accounts < 1, o.floorN < 1:
		return o, fmt.Errorf("--joiners, --leavers, --accounts and --floor-runs must be positive")
	case 2*o.leavers > o.joiners:
		return o, fmt.Errorf("--leavers %d: the idle and loaded kill switch each need their own leavers from the %d joiners", o.leavers, o.joiners)
	}
	return o, nil
}

func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	o, err := parseOptions(args, errOut)
	if err != nil {
		return err
	}
	if o.cpuprof != "" {
		f, err := os.Create(o.cpuprof)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := newBench(ctx, o, logger, errOut)
	if err != nil {
		return err
	}
	defer b.close()
	res, err := b.run(ctx)
	if err != nil {
		return err
	}
	printTable(out, res.Figures)
	if err := res.write(o.out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nwritten to %s\n", o.out)
	return nil
}
