package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"

	"github.com/spf13/cobra"

	"github.com/provisio-dev/provisio/internal/codec"
)

func newCodecServerCmd(opts *rootOptions) *cobra.Command {
	var addr string
	var origins []string
	cmd := &cobra.Command{
		Use:   "codec-server",
		Short: "Serve the payload codec to the Temporal UI, so operators with the key read encrypted runs",
		Long: `Serve the payload codec over HTTP until interrupted (SIGINT or SIGTERM).

With PROVISIO_CODEC_KEYS (or PROVISIO_CODEC_KEYS_FILE) set, the worker and
the CLI encrypt every payload before it reaches Temporal, so the Temporal
database and the UI show only ciphertext. The Temporal UI decrypts in the
browser's stead by posting payloads to a codec server: point the UI at this
one (the launcher's --ui-codec-endpoint, which ` + "`make stack`" + ` sets, or the
UI's "Codec Server" settings) and runs read as usual, for whoever can reach
the server.

Endpoints: POST /decode and POST /encode (the Temporal remote codec
protocol: a JSON Payloads body, X-Namespace header), GET /health. Browser
requests are allowed from the UI's origin (TEMPORAL_UI_URL; 127.0.0.1 and
localhost both) and from each --origin; any other origin is refused.

The server decrypts for anyone who can reach it: it listens on loopback by
default. To expose it, put it behind TLS and authentication (the UI can pass
its access token: the codec.passAccessToken UI setting).

Configuration: PROVISIO_CODEC_KEYS or PROVISIO_CODEC_KEYS_FILE (required;
secret, never logged), PROVISIO_CODEC_KEY_ID, PROVISIO_CODEC_ADDR (default
127.0.0.1:8234; --addr overrides), TEMPORAL_UI_URL.`,
		Example: `  starter codec-server
  starter codec-server --addr 127.0.0.1:8234 --origin https://temporal.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCodecServer(cmd.Context(), opts, addr, origins)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "host:port to listen on (default PROVISIO_CODEC_ADDR or 127.0.0.1:8234)")
	cmd.Flags().StringArrayVar(&origins, "origin", nil, "another browser origin allowed to call the server, e.g. https://temporal.example.com (repeatable)")
	return cmd
}

func runCodecServer(ctx context.Context, opts *rootOptions, addr string, extraOrigins []string) error {
	cfg, err := opts.config()
	if err != nil {
		return err
	}
	if addr != "" {
		cfg.Codec.ServerAddr = addr
	}
	if !cfg.Codec.Enabled() {
		return fmt.Errorf("no codec keys: set PROVISIO_CODEC_KEYS (id:base64key,...) or PROVISIO_CODEC_KEYS_FILE; make a key with `openssl rand -base64 32`")
	}
	c, err := cfg.Codec.New()
	if err != nil {
		return err
	}
	uiOrigin, err := codec.Origin(cfg.UIURL)
	if err != nil {
		return fmt.Errorf("TEMPORAL_UI_URL: %w", err)
	}
	origins := codec.LoopbackAliases(uiOrigin)
	for _, o := range extraOrigins {
		origin, err := codec.Origin(o)
		if err != nil {
			return fmt.Errorf("--origin: %w", err)
		}
		if !slices.Contains(origins, origin) {
			origins = append(origins, origin)
		}
	}
	logger := slog.New(slog.NewTextHandler(opts.errOut, nil))
	ln, err := net.Listen("tcp", cfg.Codec.ServerAddr)
	if err != nil {
		return fmt.Errorf("codec server: listen on %s (PROVISIO_CODEC_ADDR): %w", cfg.Codec.ServerAddr, err)
	}
	logger.Info("codec server listening", "addr", ln.Addr().String(), "encryptKey", c.KeyID(),
		"keys", len(cfg.Codec.Keys), "origins", origins)
	return codec.Serve(ctx, ln, codec.NewHandler(c, codec.ServerOptions{AllowedOrigins: origins, Logger: logger}), logger)
}
