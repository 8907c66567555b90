package tclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/provisio-dev/provisio/internal/config"
)

// Dial connects to Temporal and checks the server answers, so a missing
// server is reported at once rather than on the first call.
func Dial(ctx context.Context, cfg config.Config, logger *slog.Logger) (client.Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    sdklog.NewStructuredLogger(logger),
	})
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (is the stack up? run `make stack`): %w", cfg.TemporalAddress, err)
	}
	return c, nil
}
