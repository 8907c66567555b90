package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/provisio-dev/provisio/internal/scimapp"
)

// Defaults for the environment variables the command reads.
const (
	defaultAddr  = "127.0.0.1:8280"
	defaultPGURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
)

// shutdownTimeout bounds how long requests in flight may take to finish.
const shutdownTimeout = 10 * time.Second

// config is the command's configuration.
type config struct {
	Addr     string
	PGURL    string
	Token    string
	Database string
	Schema   string
}

// parseConfig reads the environment, then the flags, which win.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	cfg := config{
		Addr:     orDefault(getenv("SCIM_ADDR"), defaultAddr),
		PGURL:    orDefault(getenv("PG_URL"), defaultPGURL),
		Token:    orDefault(getenv("SCIM_TOKEN"), scimapp.DefaultToken),
		Database: scimapp.DefaultDatabase,
		Schema:   scimapp.DefaultSchema,
	}
	fs := flag.NewFlagSet("scimdemo", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (env SCIM_ADDR)")
	fs.StringVar(&cfg.Database, "database", cfg.Database, "PostgreSQL database for the app's data, created when absent")
	fs.StringVar(&cfg.Schema, "schema", cfg.Schema, "schema inside the database")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return cfg, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// run serves the app until ctx is cancelled, then shuts down cleanly.
// onListen, when set, learns the bound address (tests listen on port 0).
func run(ctx context.Context, cfg config, log *slog.Logger, onListen func(addr string)) error {
	store, err := scimapp.Open(ctx, scimapp.Options{URL: cfg.PGURL, Database: cfg.Database, Schema: cfg.Schema})
	if err != nil {
		return err
	}
	defer store.Close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	addr := ln.Addr().String()
	base := "http://" + addr + scimapp.BasePath
	handler, err := scimapp.NewHandler(scimapp.HandlerOptions{Store: store, Token: cfg.Token, BaseURL: base, Logger: log})
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	log.Warn("scimdemo is a STAND-IN for a SaaS application: a demo SCIM service, not a product; never put real people's data in it",
		"scim_base_url", base, "database", cfg.Database, "schema", cfg.Schema)
	if cfg.Token == scimapp.DefaultToken {
		log.Warn("using the default development token (set SCIM_TOKEN to change it)")
	}
	if onListen != nil {
		onListen(addr)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("scimdemo shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scimdemo:", err)
		os.Exit(2)
	}
	if err := run(ctx, cfg, log, nil); err != nil {
		fmt.Fprintln(os.Stderr, "scimdemo:", err)
		os.Exit(1)
	}
}
