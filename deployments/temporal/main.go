package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/server/common/log"
)

func main() {
	os.Exit(realMain(os.Args[1:]))
}

// realMain parses the flags, runs the launcher until SIGINT/SIGTERM and returns the exit code,
// so that deferred clean-ups run before os.Exit.
func realMain(args []string) int {
	cfg, err := parseFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "temporal-launcher: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Zap writes to stderr when neither Stdout nor OutputFile is set.
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: cfg.LogLevel, Format: "json"}))
	if err := run(ctx, cfg, logger); err != nil {
		fmt.Fprintf(os.Stderr, "temporal-launcher: %v\n", err)
		return 1
	}
	return 0
}
