package webhook

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/provisio-dev/provisio/internal/httpserve"
)

// Timeouts of the HTTP server: a slow client cannot hold a connection, and
// a response may take as long as starting an event.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = DefaultStartTimeout + 15*time.Second
	IdleTimeout       = 60 * time.Second
	// ShutdownTimeout bounds how long requests in flight may finish once
	// the context ends.
	ShutdownTimeout = DefaultStartTimeout + 5*time.Second
)

// Serve runs h on ln until ctx ends, then shuts down gracefully: no new
// connections, requests in flight finish (within ShutdownTimeout).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	return httpserve.Serve(ctx, ln, h, "webhook", httpserve.Timeouts{
		ReadHeader: ReadHeaderTimeout, Read: ReadTimeout, Write: WriteTimeout, Idle: IdleTimeout, Shutdown: ShutdownTimeout,
	}, logger)
}
