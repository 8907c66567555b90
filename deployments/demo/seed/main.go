package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/provisio-dev/provisio/internal/app"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/seed"
	"github.com/provisio-dev/provisio/policy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

// run seeds the entitlements of the policy file named by args or the
// environment, writing progress to stdout and usage to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyFile := fs.String("policy", cfg.PolicyFile, "policy file whose entitlements are created (env PROVISIO_POLICY)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	p, err := policy.Load(*policyFile)
	if err != nil {
		return fmt.Errorf("load policy: %w", err)
	}
	conns, closeConns, err := app.NewConnectors(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to the applications: %w", err)
	}
	defer closeConns()
	fmt.Fprintf(stdout, "Seeding the entitlements of %s (policy version %.12s)\n", p.Source, p.Version)
	err = seed.Entitlements(ctx, p, conns, func(format string, args ...any) {
		fmt.Fprintf(stdout, format+"\n", args...)
	})
	if err != nil {
		return fmt.Errorf("seed %s: %w", p.Source, err)
	}
	return nil
}
