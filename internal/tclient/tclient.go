package tclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/grpc"

	"github.com/provisio-dev/provisio/internal/config"
)

// Dial connects to Temporal and checks the server answers, so a missing
// server is reported at once rather than on the first call.
//
// With codec keys configured (cfg.Codec), the connection encrypts every
// payload it sends and decrypts every payload it receives; see
// CodecDialOption.
func Dial(ctx context.Context, cfg config.Config, logger *slog.Logger) (client.Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    sdklog.NewStructuredLogger(logger),
	}
	if cfg.Codec.Enabled() {
		dialOpt, err := CodecDialOption(cfg.Codec)
		if err != nil {
			return nil, err
		}
		opts.ConnectionOptions.DialOptions = append(opts.ConnectionOptions.DialOptions, dialOpt)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (is the stack up? run `make stack`): %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// CodecDialOption is the gRPC option that encrypts outgoing and decrypts
// incoming payloads with the codec of cc, and moves failure messages and
// stack traces into an encrypted payload too (they may name people).
//
// The codec sits on the connection rather than in the SDK's data
// converter: the worker, the CLI and the tests then read histories,
// queries, descriptions and list results in the clear without each
// knowing about encryption (the replayer gets plain histories from
// GetWorkflowHistory), while every byte that reaches the server is
// ciphertext. Search attributes are left alone: the server indexes them,
// which is why they hold employee IDs and states, never names.
func CodecDialOption(cc config.Codec) (grpc.DialOption, error) {
	c, err := cc.New()
	if err != nil {
		return nil, fmt.Errorf("payload codec: %w", err)
	}
	// Failure attributes are moved into a payload first, then every
	// payload (that one included) is encrypted: the failure interceptor
	// must come first in the chain, as the SDK documents.
	failures, err := converter.NewFailureGRPCClientInterceptor(converter.NewFailureGRPCClientInterceptorOptions{
		EncodeCommonAttributes: true,
	})
	if err != nil {
		return nil, fmt.Errorf("payload codec: failure interceptor: %w", err)
	}
	payloads, err := converter.NewPayloadCodecGRPCClientInterceptor(converter.PayloadCodecGRPCClientInterceptorOptions{
		Codecs: []converter.PayloadCodec{c},
	})
	if err != nil {
		return nil, fmt.Errorf("payload codec: payload interceptor: %w", err)
	}
	return grpc.WithChainUnaryInterceptor(failures, payloads), nil
}
