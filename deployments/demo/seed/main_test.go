package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/scimapp/scimapptest"
)

func randomLetters(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}

// removeWhenDone deletes the LDAP group and PostgreSQL role a run creates.
func removeWhenDone(t *testing.T, cfg config.Config, group, role string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := goldap.DialURL(cfg.LDAP.URL); err == nil {
			if err := conn.Bind(cfg.LDAP.BindDN, cfg.LDAP.Password); err == nil {
				_ = conn.Del(goldap.NewDelRequest("cn="+goldap.EscapeDN(group)+","+cfg.LDAP.GroupsDN, nil))
			}
			_ = conn.Close()
		}
		if conn, err := pgx.Connect(ctx, cfg.Postgres.URL); err == nil {
			if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()); err != nil {
				t.Logf("cleanup of role %s: %v", role, err)
			}
			_ = conn.Close(ctx)
		}
	})
}

// TestRunSeedsOnce runs the command twice against the real LDAP server and
// PostgreSQL and an in-process demo SCIM app: the first run creates, the
// second creates nothing.
func TestRunSeedsOnce(t *testing.T) {
	srv := scimapptest.Start(t, scimapptest.Options{})
	t.Setenv("SCIM_URL", srv.URL)
	t.Setenv("SCIM_TOKEN", srv.Token)
	cfg, err := config.FromEnv()
	require.NoError(t, err)

	p := randomLetters(8)
	group, role, scimGroup := p+"-vpn", p+"_read", p+"-auditors"
	removeWhenDone(t, cfg, group, role)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(file, fmt.Appendf(nil, `schema: 1
applications:
  - {name: ldap, connector: ldap, owner: E100001, entitlements: [{name: %s, risk: low}]}
  - {name: postgres, connector: postgres, owner: E100001, entitlements: [{name: %s, risk: low}]}
  - {name: scim, connector: scim, owner: E100001, entitlements: [{name: %s, risk: low}]}
`, group, role, scimGroup), 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"--policy", file}, &out, &errOut); err != nil {
		t.Fatalf("run: %v (is the stack up? run `make stack`)", err)
	}
	assert.Contains(t, out.String(), "ldap/"+group+": created\n")
	assert.Contains(t, out.String(), "postgres/"+role+": created\n")
	assert.Contains(t, out.String(), "scim/"+scimGroup+": created\n")
	assert.Contains(t, out.String(), "entitlements: 3 created, 0 already present, 0 failed; 0 applications skipped\n")

	out.Reset()
	require.NoError(t, run(ctx, []string{"--policy", file}, &out, &errOut))
	assert.NotContains(t, out.String(), ": created")
	assert.Contains(t, out.String(), "entitlements: 0 created, 3 already present, 0 failed; 0 applications skipped\n")
}

func TestRunRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"--policy", filepath.Join(t.TempDir(), "missing.yaml")}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "load policy")

	err = run(ctx, []string{"extra"}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unexpected arguments")

	require.Error(t, run(ctx, []string{"--no-such-flag"}, &out, &errOut))
	require.NoError(t, run(ctx, []string{"-h"}, &out, &errOut), "help is not a failure")
	assert.Contains(t, errOut.String(), "-policy")
}
