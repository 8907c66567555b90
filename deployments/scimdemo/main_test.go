package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/scimapp"
	"github.com/provisio-dev/provisio/internal/scimapp/scimapptest"
)

func TestParseConfig(t *testing.T) {
	env := map[string]string{"SCIM_ADDR": "127.0.0.1:9999", "SCIM_TOKEN": "tok", "PG_URL": "postgres://x/y"}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want config
	}{
		{"defaults", nil, nil, config{Addr: defaultAddr, PGURL: defaultPGURL, Token: scimapp.DefaultToken,
			Database: scimapp.DefaultDatabase, Schema: scimapp.DefaultSchema}},
		{"environment", nil, env, config{Addr: "127.0.0.1:9999", PGURL: "postgres://x/y", Token: "tok",
			Database: scimapp.DefaultDatabase, Schema: scimapp.DefaultSchema}},
		{"flags win", []string{"-addr", "127.0.0.1:1", "-schema", "s"}, env, config{Addr: "127.0.0.1:1", PGURL: "postgres://x/y",
			Token: "tok", Database: scimapp.DefaultDatabase, Schema: "s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfig(tc.args, func(k string) string { return tc.env[k] })
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := parseConfig([]string{"extra"}, func(string) string { return "" })
	assert.Error(t, err)
}

// TestRunServesAndShutsDown starts the command's server on a free port:
// the stand-in page, authentication and the seeded groups, then a clean
// shutdown on cancel.
func TestRunServesAndShutsDown(t *testing.T) {
	opts := scimapptest.StoreOptions(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := config{Addr: "127.0.0.1:0", PGURL: opts.URL, Token: "run-test-token", Database: opts.Database, Schema: opts.Schema}
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(a string) { addrs <- a })
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	base := "http://" + addr

	resp, err := http.Get(base + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(page), "stand-in for a SaaS application")

	resp, err = http.Get(base + "/scim/v2/Groups")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	req, _ := http.NewRequest(http.MethodGet, base+"/scim/v2/Groups", nil)
	req.Header.Set("Authorization", "Bearer run-test-token")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var list struct {
		TotalResults int
		Resources    []struct{ DisplayName string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	resp.Body.Close()
	var names []string
	for _, g := range list.Resources {
		names = append(names, g.DisplayName)
	}
	assert.ElementsMatch(t, scimapp.SeedGroups(), names)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "clean shutdown")
	case <-time.After(15 * time.Second):
		t.Fatal("no shutdown after cancel")
	}
	_, err = http.Get(base + "/")
	assert.True(t, err != nil && strings.Contains(err.Error(), "refused"), "the port is released: %v", err)
}
