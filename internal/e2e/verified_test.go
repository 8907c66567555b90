package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/scim"
	"github.com/provisio-dev/provisio/internal/app"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/scimapp/scimapptest"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/policy"
	"github.com/provisio-dev/provisio/workflows"
)

// ignoringStack is the real stack with one difference: the worker's "scim"
// application is a demo SCIM app of the test's own that accepts
// deactivations and ignores them, as broken SaaS products do, and the
// policy gives it a disable_fallback.
type ignoringStack struct {
	cfg      config.Config
	c        client.Client
	deps     *app.Deps
	bin      string
	srv      *scimapptest.Server
	scim     *scim.Client
	ledger   *ledger.Store
	employee string
	username string
}

func newIgnoringStack(t *testing.T, fallback string) *ignoringStack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &ignoringStack{cfg: testConfig(t)}
	s.cfg.PolicyFile = policyWithFallback(t, s.cfg.PolicyFile, "scim", fallback)
	pol, err := policy.Load(s.cfg.PolicyFile)
	require.NoError(t, err)
	require.Equal(t, fallback, pol.DisableFallback("scim"))

	s.srv = scimapptest.Start(t, scimapptest.Options{IgnoreDeactivate: true})
	newConn := func() *scim.Client {
		c, err := scim.New(scim.Config{Name: "scim", BaseURL: s.srv.URL, Token: s.srv.Token, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	s.scim = newConn()
	for _, e := range pol.Application("scim").Entitlements {
		_, err := s.scim.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: e.Name})
		require.NoError(t, err)
	}
	// Both the lifecycle and the revocation worker talk to the ignoring app.
	s.c, s.deps = startWorkerWith(t, s.cfg, func(d *app.Deps) {
		d.Activities.Connectors["scim"] = newConn()
		d.Revocation.Connectors["scim"] = newConn()
	})
	s.bin = buildStarter(t)
	pool, err := store.Open(ctx, s.cfg.StoreURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s.ledger = ledger.New(pool)
	return s
}

// policyWithFallback copies the policy file with a leaver section giving
// app the disable fallback.
func policyWithFallback(t *testing.T, file, app, fallback string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	anchor := "    connector: " + app + "\n"
	require.Equal(t, 1, strings.Count(string(data), anchor), "the policy declares one %s application", app)
	out := strings.Replace(string(data), anchor, anchor+"    leaver: {disable_fallback: "+fallback+"}\n", 1)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(out), 0o600))
	return path
}

// hire hires a fresh person through the CLI; they get a SCIM account in
// the ignoring app.
func (s *ignoringStack) hire(t *testing.T, ctx context.Context) {
	t.Helper()
	s.employee = newEmployeeID(t)
	for { // the ledger is append-only: take an ID no earlier run used
		earlier, err := s.ledger.Trail(ctx, s.employee, time.Time{})
		require.NoError(t, err)
		if len(earlier) == 0 {
			break
		}
		s.employee = newEmployeeID(t)
	}
	out, err := runCLI(t, s.bin, s.cfg, "hire", "-f", writePerson(t, newTestPerson(s.employee, "Ver", "Ified")), "--wait")
	require.NoError(t, err, out)
	var hired workflows.OnboardingResult
	require.NoError(t, s.c.GetWorkflow(ctx, workflows.OnboardingID(s.employee), "").Get(ctx, &hired))
	s.username = hired.Username
	require.NotEmpty(t, s.username)
	t.Cleanup(func() {
		_ = s.c.TerminateWorkflow(context.Background(), workflows.OffboardingID(s.employee), "", "e2e cleanup")
		for _, conn := range s.deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: s.username})
		}
	})
	acct, err := s.scim.GetAccount(ctx, connectors.AccountRequest{Username: s.username})
	require.NoError(t, err, "the hire created the SCIM account in the ignoring app")
	require.False(t, acct.Disabled)
}

// revocations are the person's ledger entries that take access away, by
// application.
func (s *ignoringStack) revocations(t *testing.T, ctx context.Context) map[string][]ledger.Entry {
	t.Helper()
	trail, err := s.ledger.Trail(ctx, s.employee, time.Time{})
	require.NoError(t, err)
	out := map[string][]ledger.Entry{}
	for _, e := range trail {
		if e.Action.IsRevocation() {
			out[e.Application] = append(out[e.Application], e)
		}
	}
	return out
}

// TestVerifiedRevocation terminates people whose SCIM application ignores
// the disable. With disable_fallback delete the account is deleted at once
// and the ledger says so; with flag the run keeps retrying under
// NeedsAttention and nothing claims the access is gone. In both, the other
// applications' revocations are verified by reading them back.
func TestVerifiedRevocation(t *testing.T) {
	t.Run("delete", func(t *testing.T) {
		s := newIgnoringStack(t, policy.FallbackDelete)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.hire(t, ctx)

		out, err := runCLI(t, s.bin, s.cfg, "terminate", s.employee, "--reason", "e2e ignored disable", "--wait")
		require.NoError(t, err, out)
		assert.Contains(t, out, "scim       deleted instead of disabled (verified gone): the application ignored the disable")
		assert.Contains(t, out, "ldap       disabled (verified by read-back)")

		_, err = s.scim.GetAccount(ctx, connectors.AccountRequest{Username: s.username})
		assert.True(t, connectors.IsNotFound(err), "the SCIM account is gone: %v", err)

		revs := s.revocations(t, ctx)
		require.Len(t, revs["scim"], 1, "one entry for the SCIM account: its fallback deletion")
		del := revs["scim"][0]
		assert.Equal(t, ledger.ActionDeleted, del.Action)
		assert.Equal(t, ledger.VerifiedFallbackDelete, del.VerifiedBy)
		assert.Contains(t, del.Note, "disable ignored")
		for app, entries := range revs {
			for _, e := range entries {
				assert.False(t, e.RequestedAt.IsZero(), "%s %s: requested at", app, e.Action)
				assert.False(t, e.VerifiedAt.Before(e.RequestedAt), "%s %s: verified %s, requested %s", app, e.Action, e.VerifiedAt, e.RequestedAt)
				if app != "scim" {
					assert.Equal(t, ledger.VerifiedReadBack, e.VerifiedBy, "%s %s", app, e.Action)
				}
			}
		}
		for _, app := range []string{"ldap", "postgres"} {
			require.NotEmpty(t, revs[app], app)
			assert.Equal(t, ledger.ActionDisabled, revs[app][0].Action, "%s: the disable comes first", app)
		}

		out, err = runCLI(t, s.bin, s.cfg, "status", s.employee)
		require.NoError(t, err, out)
		assert.Contains(t, out, "access removed (verified)")
		// Still in retention for LDAP and PostgreSQL: replaying it proves a
		// new worker can take the fallback path over.
		// (v1 was recorded before the disable loops ran independently.)
		recordHistory(t, s.c, workflows.OffboardingID(s.employee), "", "offboarding-disable-fallback-v2")
	})

	t.Run("flag", func(t *testing.T) {
		s := newIgnoringStack(t, policy.FallbackFlag)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.hire(t, ctx)

		// The quick retries of the SCIM disable take about 20 s; then the
		// run flags itself for an operator and goes on with the other
		// applications, and --wait says access is not fully removed.
		out, err := runCLI(t, s.bin, s.cfg, "terminate", s.employee, "--reason", "e2e ignored disable", "--wait")
		require.Error(t, err, out)
		assert.Contains(t, out, "Access NOT fully removed for "+s.employee)
		assert.Contains(t, out, "scim       NOT disabled yet")
		assert.Contains(t, out, "ldap       disabled (verified by read-back)")
		assert.Contains(t, out, "is not removed in scim yet: the run keeps retrying and needs attention")
		offID := workflows.OffboardingID(s.employee)
		info, err := describeRun(ctx, s.c, offID)
		require.NoError(t, err)
		assert.True(t, info.needsAttention, "NeedsAttention is raised while the disable is ignored")
		assert.Equal(t, "running", info.status, "it never gives up")
		assert.Equal(t, workflows.StateRetention, info.state, "the other applications were not held up")

		v, err := s.c.QueryWorkflow(ctx, offID, "", workflows.QueryState)
		require.NoError(t, err)
		var st workflows.OffboardingState
		require.NoError(t, v.Get(&st))
		require.NotEmpty(t, st.Problems)
		assert.Equal(t, "scim", st.Problems[0].Application)
		assert.Equal(t, "disable account", st.Problems[0].Step)
		assert.Contains(t, st.Problems[0].Error, "not verified")

		ok, err := s.srv.Store.CanLogin(ctx, s.username)
		require.NoError(t, err)
		assert.True(t, ok, "the application still lets the person in, and nobody pretends otherwise")
		revs := s.revocations(t, ctx)
		for _, e := range revs["scim"] {
			// Its groups were removed and read back; its disable was not.
			assert.Equal(t, ledger.ActionRevoked, e.Action, "the ledger records no SCIM disable it could not verify")
			assert.Equal(t, ledger.VerifiedReadBack, e.VerifiedBy)
		}
		require.NotEmpty(t, revs["ldap"], "the other applications' disables are verified and recorded")
		assert.Equal(t, ledger.VerifiedReadBack, revs["ldap"][0].VerifiedBy)
		acct, err := s.scim.GetAccount(ctx, connectors.AccountRequest{Username: s.username})
		require.NoError(t, err)
		assert.Empty(t, acct.Entitlements, "the ignoring application's groups were revoked all the same")

		out, err = runCLI(t, s.bin, s.cfg, "status", s.employee)
		require.NoError(t, err, out)
		assert.NotContains(t, out, "access removed (verified)")
		assert.Contains(t, out, "leaver: access NOT removed everywhere, not verified in scim (disable not confirmed)")
		assert.Contains(t, out, "needs attention")
		assert.Contains(t, out, "scim")
		// The application's administrator removes the user by hand and
		// asks the run to try again now rather than at its next slot: the
		// disable finds the user gone, which is read back and recorded.
		_, err = s.scim.DeleteAccount(ctx, connectors.AccountRequest{Username: s.username})
		require.NoError(t, err)
		out, err = runCLI(t, s.bin, s.cfg, "retry", s.employee)
		require.NoError(t, err, out)
		assert.Contains(t, out, "Asked "+offID+" to try again now:\n  scim: disable account: ")
		require.Eventually(t, func() bool {
			info, err := describeRun(ctx, s.c, offID)
			return err == nil && !info.needsAttention
		}, 30*time.Second, 200*time.Millisecond, "the retry settled it and cleared NeedsAttention")
		revs = s.revocations(t, ctx)
		last := revs["scim"][len(revs["scim"])-1]
		assert.Equal(t, ledger.ActionDeleted, last.Action)
		assert.Equal(t, ledger.VerifiedReadBack, last.VerifiedBy)
		assert.Contains(t, last.Note, "found gone when disabling")
		out, err = runCLI(t, s.bin, s.cfg, "status", s.employee)
		require.NoError(t, err, out)
		assert.Contains(t, out, "leaver: access removed (verified)")
		// In retention after a retry-now signal settled the SCIM disable.
		recordHistory(t, s.c, offID, "", "offboarding-disable-flag-v1")
	})
}
