// Package httpserve runs the project's small HTTP servers (the webhook and
// the codec server) the same way: bounded timeouts and header size, errors
// through slog, and a graceful shutdown when the context ends.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts bound one server's connections and its shutdown.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
	// Shutdown bounds how long requests in flight may finish once the
	// context ends.
	Shutdown time.Duration
}

// MaxHeaderBytes caps request headers: neither server needs more.
const MaxHeaderBytes = 16 << 10

// Serve runs h on ln until ctx ends, then stops taking connections and lets
// requests in flight finish within t.Shutdown. name prefixes its errors.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, name string, t Timeouts, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("%s: %w", name, err)
	case <-ctx.Done():
	}
	logger.Info(name + " shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.Shutdown)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("%s shutdown: %w", name, err)
	}
	return nil
}
