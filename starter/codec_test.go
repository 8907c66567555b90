package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/provisio-dev/provisio/internal/codec"
	"github.com/provisio-dev/provisio/internal/config"
)

// syncBuffer is a bytes.Buffer the server's logger and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runCodecServerCmd runs `starter codec-server ARGS` in-process until ctx
// ends; it returns the command's error and its log.
func runCodecServerCmd(ctx context.Context, cfg config.Config, logs io.Writer, args ...string) error {
	opts := &rootOptions{out: io.Discard, errOut: logs, cfg: cfg}
	cmd := newCodecServerCmd(opts)
	cmd.SetOut(io.Discard)
	cmd.SetErr(logs)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	cmd.SetContext(ctx)
	return cmd.Execute()
}

func codecConfig(t *testing.T, keys ...codec.Key) config.Config {
	t.Helper()
	cfg := config.Config{UIURL: config.DefaultUIURL, Codec: config.Codec{ServerAddr: "127.0.0.1:0"}}
	if len(keys) > 0 {
		cfg.Codec.Keys, cfg.Codec.KeyID = keys, keys[len(keys)-1].ID
	}
	return cfg
}

func TestCodecServerCommand(t *testing.T) {
	key, err := codec.GenerateKey("k1")
	require.NoError(t, err)
	cfg := codecConfig(t, key)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runCodecServerCmd(ctx, cfg, logs, "--origin", "https://temporal.example.com/ui") }()

	listening := regexp.MustCompile(`msg="codec server listening" addr=(\S+)`)
	var base string
	require.Eventually(t, func() bool {
		m := listening.FindStringSubmatch(logs.String())
		if m != nil {
			base = "http://" + m[1]
		}
		return m != nil
	}, 10*time.Second, 20*time.Millisecond, "the server logs its address: %s", logs.String())

	// A payload the worker would have written, decoded over HTTP.
	c, err := cfg.Codec.New()
	require.NoError(t, err)
	plain, err := converter.GetDefaultDataConverter().ToPayload("Ada Lovelace")
	require.NoError(t, err)
	enc, err := c.Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	require.NoError(t, err)
	for _, origin := range []string{"http://127.0.0.1:8233", "http://localhost:8233", "https://temporal.example.com"} {
		req, err := http.NewRequest(http.MethodPost, base+"/decode", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", origin, data)
		assert.Equal(t, origin, resp.Header.Get("Access-Control-Allow-Origin"))
		var got commonpb.Payloads
		require.NoError(t, protojson.Unmarshal(data, &got))
		var s string
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(got.Payloads[0], &s))
		assert.Equal(t, "Ada Lovelace", s)
	}
	resp, err := http.Get(base + codec.HealthPath)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "the server stops cleanly when interrupted")
	case <-time.After(15 * time.Second):
		t.Fatal("codec-server did not stop")
	}
	secret := codec.FormatKeys([]codec.Key{key})[len("k1:"):]
	assert.NotContains(t, logs.String(), secret, "the key is never logged")
	assert.Contains(t, logs.String(), "encryptKey=k1")
}

func TestCodecServerRefuses(t *testing.T) {
	key, err := codec.GenerateKey("k1")
	require.NoError(t, err)
	tests := []struct {
		name string
		cfg  config.Config
		args []string
		want string
	}{
		{"no keys", codecConfig(t), nil, "no codec keys: set PROVISIO_CODEC_KEYS"},
		{"bad origin", codecConfig(t, key), []string{"--origin", "temporal.example.com"}, `--origin: "temporal.example.com" is not an absolute URL`},
		{"bad UI URL", func() config.Config { c := codecConfig(t, key); c.UIURL = "ui"; return c }(), nil, "TEMPORAL_UI_URL"},
		{"bad address", codecConfig(t, key), []string{"--addr", "127.0.0.1:99999"}, "listen on 127.0.0.1:99999 (PROVISIO_CODEC_ADDR)"},
		{"extra argument", codecConfig(t, key), []string{"now"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var logs bytes.Buffer
			err := runCodecServerCmd(ctx, tt.cfg, &logs, tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.False(t, strings.Contains(logs.String(), "listening"), "nothing was served: %s", logs.String())
		})
	}
}
