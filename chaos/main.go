// Command chaos is the fault test of `make chaos`: on private instances of
// PostgreSQL, slapd, the SCIM demo app and Temporal it hires, moves and
// terminates people while it kills the worker with SIGKILL, restarts the
// Temporal server, stops slapd and then PostgreSQL for a while and makes
// PostgreSQL refuse a hire for good; then it compares what the
// applications hold with what policy and the HR events say, and the
// access ledger with the applications. It prints what it injected and the
// comparison, and exits 1 on any difference (2 when it could not run).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/provisio-dev/provisio/chaos/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ok, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	case !ok:
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, errOut io.Writer) (bool, error) {
	sc := harness.Full()
	var opts harness.Options
	var jsonOut string
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.IntVar(&sc.Hires, "hires", sc.Hires, "people hired during the run")
	fs.IntVar(&sc.Moves, "moves", sc.Moves, "of them, people moved to another job right after their hire")
	fs.IntVar(&sc.Leavers, "leavers", sc.Leavers, "of them, people terminated once onboarded")
	fs.IntVar(&sc.Doomed, "doomed", sc.Doomed, "people hired while PostgreSQL refuses new accounts (partial failure; 0 skips it)")
	fs.IntVar(&sc.WorkerKills, "kills", sc.WorkerKills, "SIGKILLs of the worker at random moments")
	fs.IntVar(&sc.LauncherRestarts, "launcher-restarts", sc.LauncherRestarts, "stops and restarts of the Temporal server")
	fs.DurationVar(&sc.LDAPOutage, "ldap-outage", sc.LDAPOutage, "how long slapd is stopped (0 skips it)")
	fs.DurationVar(&sc.PostgresOutage, "pg-outage", sc.PostgresOutage, "how long PostgreSQL is stopped (0 skips it)")
	fs.DurationVar(&sc.Spread, "spread", sc.Spread, "how long sending the hires takes; the faults fall within it")
	fs.DurationVar(&sc.Settle, "settle", sc.Settle, "how long to wait for every run to finish after the faults")
	fs.Uint64Var(&opts.Seed, "seed", 0, "random seed for the moments of the faults and the employee IDs (0: random, printed)")
	fs.StringVar(&opts.Dir, "dir", "", "work directory for the private instances (default: a new temporary one, removed after a clean run)")
	fs.BoolVar(&opts.Keep, "keep", false, "keep the work directory after a clean run")
	fs.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	root, err := repoRoot()
	if err != nil {
		return false, err
	}
	opts.RepoRoot = root
	opts.SharedPGURL = os.Getenv("PG_URL")
	opts.Log = out

	report, err := harness.Run(ctx, opts, sc)
	if report != nil {
		report.Print(out)
		if jsonOut != "" {
			if werr := writeJSON(jsonOut, report); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	if err != nil {
		return false, err
	}
	return report.OK(), nil
}

// repoRoot is the module root: the working directory when it holds
// go.mod (make runs from there), else where this file was compiled.
func repoRoot() (string, error) {
	if _, err := os.Stat("go.mod"); err == nil {
		return os.Getwd()
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot find the repository: run from its root")
	}
	return filepath.Dir(filepath.Dir(file)), nil
}

func writeJSON(path string, r *harness.Report) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
