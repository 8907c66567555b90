package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/store"
)

// fakeLedger answers the read commands with fixed data.
type fakeLedger struct {
	holdings map[string][]ledger.Holding
	holders  map[string][]ledger.Holding // by "app/entitlement"
	trail    map[string][]ledger.Entry
	err      error
	// since is what Trail was last asked for.
	since time.Time
}

func (f *fakeLedger) Holdings(_ context.Context, id string) ([]ledger.Holding, error) {
	return f.holdings[id], f.err
}

func (f *fakeLedger) Holders(_ context.Context, app, ent string) ([]ledger.Holding, error) {
	return f.holders[app+"/"+ent], f.err
}

func (f *fakeLedger) Trail(_ context.Context, id string, since time.Time) ([]ledger.Entry, error) {
	f.since = since
	var out []ledger.Entry
	for _, e := range f.trail[id] {
		if !e.At.Before(since) {
			out = append(out, e)
		}
	}
	return out, f.err
}

// opener returns an openLedgerFunc giving l; a nil l fails the test if the
// command opens the ledger at all.
func opener(t *testing.T, l ledgerReader) openLedgerFunc {
	return func(context.Context, config.Config) (ledgerReader, func(), error) {
		if l == nil {
			t.Fatal("the command must refuse its input before opening the ledger")
		}
		return l, func() {}, nil
	}
}

// testCfg is the configuration the unit tests print links with.
var testCfg = config.Config{TaskQueue: "test", UIURL: "http://ui", TemporalNamespace: "default",
	PolicyFile: "../deployments/demo/policy.yaml"}

// runCmd runs one command built by newCmd with c as the Temporal client
// (nil: it must not dial); it returns stdout, stderr and the error.
func runCmd(t *testing.T, cfg config.Config, c client.Client, newCmd func(*rootOptions) *cobra.Command, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	opts := &rootOptions{out: &out, errOut: &errOut, cfg: cfg,
		dial: func(context.Context, config.Config) (client.Client, error) {
			if c == nil {
				t.Fatal("the command must not dial Temporal")
			}
			return c, nil
		}}
	cmd := newCmd(opts)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd.SetContext(ctx)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func accessCmd(l ledgerReader, t *testing.T) func(*rootOptions) *cobra.Command {
	return func(o *rootOptions) *cobra.Command { return newAccessCmdWith(o, opener(t, l)) }
}

func auditCmd(l ledgerReader, t *testing.T, now time.Time) func(*rootOptions) *cobra.Command {
	return func(o *rootOptions) *cobra.Command {
		return newAuditCmdWith(o, opener(t, l), func() time.Time { return now })
	}
}

func TestLedgerCommandsRefuseBadInputBeforeOpeningTheLedger(t *testing.T) {
	tests := []struct {
		name  string
		audit bool
		args  []string
		want  string
	}{
		{"access: nothing asked", false, nil, "give EMPLOYEE_ID (what a person holds) or --app and --entitlement"},
		{"access: bad employee", false, []string{"E1' OR '1'='1"}, "employee ID must be E followed by 6 digits"},
		{"access: both forms", false, []string{"E100001", "--app", "scim", "--entitlement", "sales"}, "not both"},
		{"access: app alone", false, []string{"--app", "scim"}, "--entitlement is required with --app"},
		{"access: entitlement alone", false, []string{"--entitlement", "sales"}, "--app is required with --entitlement"},
		{"access: bad app", false, []string{"--app", "Scim;DROP", "--entitlement", "sales"}, `--app "Scim;DROP" is not an application name`},
		{"access: bad entitlement", false, []string{"--app", "scim", "--entitlement", "a/b"}, `--entitlement "a/b" is not an entitlement name`},
		{"access: quote in entitlement", false, []string{"--app", "scim", "--entitlement", "x' OR 'y"}, "is not an entitlement name"},
		{"access: two employees", false, []string{"E100001", "E100002"}, "accepts at most 1 arg"},
		{"access: bad output", false, []string{"E100001", "-o", "yaml"}, "--output: want table or json"},
		{"audit: no employee", true, nil, "accepts 1 arg"},
		{"audit: bad employee", true, []string{"e100001"}, "employee ID must be E followed by 6 digits"},
		{"audit: bad since", true, []string{"E100001", "--since", "yesterday"}, `--since "yesterday": want a date`},
		{"audit: future since", true, []string{"E100001", "--since", "2999-01-01"}, "is in the future"},
		{"audit: bad output", true, []string{"E100001", "-o", "csv"}, "--output: want table or json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newCmd := accessCmd(nil, t)
			if tt.audit {
				newCmd = auditCmd(nil, t, time.Now())
			}
			_, _, err := runCmd(t, testCfg, nil, newCmd, tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  string
	}{
		{"", time.Time{}, ""},
		{"2026-01-31", time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), ""},
		{"2026-03-10T09:30:00Z", time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC), ""},
		{"30d", now.Add(-30 * 24 * time.Hour), ""},
		{"12h", now.Add(-12 * time.Hour), ""},
		{"1d12h", now.Add(-36 * time.Hour), ""},
		{"2026-03-11", time.Time{}, "in the future"},
		{"0d", time.Time{}, "must be positive"},
		{"31.01.2026", time.Time{}, "want a date"},
		{"' OR 1=1 --", time.Time{}, "want a date"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSince(tt.in, now)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.True(t, tt.want.Equal(got), "want %s, got %s", tt.want, got)
		})
	}
}

// fixture is one person's small trail: hired with rules, granted an
// approved entitlement, then moved (a revoke).
func fixture() (string, []ledger.Entry) {
	const id = "E100091"
	t1 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	base := ledger.Entry{EmployeeID: id, Application: "scim", Account: "ana.test", PolicyVersion: "0123456789abcdef",
		WorkflowID: "onboarding-" + id, RunID: "run-1"}
	e := func(seq int64, at time.Time, action ledger.Action, ent string, j ledger.Justification) ledger.Entry {
		x := base
		x.Seq, x.At, x.Action, x.Entitlement, x.Justification = seq, at, action, ent, j
		x.ActivityID = fmt.Sprint(seq)
		return x
	}
	joiner := ledger.Justification{Event: ledger.EventJoiner, Rules: []string{"everyone", "role:engineer"}}
	approved := ledger.Justification{Event: ledger.EventJoiner, ApprovalID: "onboarding-" + id + "/scim/finance-admins",
		Approver: "E100008", ApprovedAt: t1.Add(2 * time.Hour)}
	mover := e(4, t1.Add(48*time.Hour), ledger.ActionRevoked, "engineering", ledger.Justification{Event: ledger.EventMover, Rules: []string{"role:engineer"}})
	mover.WorkflowID, mover.RunID = "mover-"+id+"-abc", "run-2"
	return id, []ledger.Entry{
		e(1, t1, ledger.ActionCreated, "", joiner),
		e(2, t1, ledger.ActionGranted, "engineering", joiner),
		e(3, t1.Add(3*time.Hour), ledger.ActionGranted, "finance-admins", approved),
		mover,
	}
}

func TestAccessAndAuditPrintTheLedger(t *testing.T) {
	id, trail := fixture()
	holdings := ledger.Fold(trail)
	l := &fakeLedger{
		holdings: map[string][]ledger.Holding{id: holdings},
		holders:  map[string][]ledger.Holding{"scim/finance-admins": holdings[1:]},
		trail:    map[string][]ledger.Entry{id: trail},
	}
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	runURL := "http://ui/namespaces/default/workflows/onboarding-E100091/run-1/history"

	t.Run("access table", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, nil, accessCmd(l, t), id)
		require.NoError(t, err)
		assert.Contains(t, out, "Access of E100091 now: 1 account(s), 1 entitlement(s)")
		assert.Regexp(t, `scim\s+ana\.test\s+-\s+enabled\s+.*joiner: rules everyone, role:engineer\s+0123456789ab\s+onboarding-E100091`, out)
		assert.Regexp(t, `scim\s+ana\.test\s+finance-admins\s+granted\s+.*joiner: approved by E100008 at .* \(onboarding-E100091/scim/finance-admins\)`, out)
		assert.NotContains(t, out, "engineering", "a revoked entitlement is not held")
		assert.Contains(t, out, "onboarding-E100091  "+runURL)
	})
	t.Run("access json", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, nil, accessCmd(l, t), id, "-o", "json")
		require.NoError(t, err)
		var raw map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &raw))
		assert.Equal(t, id, raw["employeeId"])
		hs := raw["holdings"].([]any)
		require.Len(t, hs, 2)
		grant := hs[1].(map[string]any)
		// The documented field names, flat.
		for k, want := range map[string]any{
			"employeeId": id, "application": "scim", "account": "ana.test", "entitlement": "finance-admins",
			"state": "granted", "since": "2026-01-05T12:00:00Z", "event": "joiner",
			"approvalId": "onboarding-E100091/scim/finance-admins", "approver": "E100008",
			"approvedAt": "2026-01-05T11:00:00Z", "policyVersion": "0123456789abcdef",
			"workflowId": "onboarding-E100091", "runId": "run-1", "url": runURL,
		} {
			assert.Equal(t, want, grant[k], k)
		}
	})
	t.Run("holders", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, nil, accessCmd(l, t), "--app", "scim", "--entitlement", "finance-admins")
		require.NoError(t, err)
		assert.Contains(t, out, "Holders of scim/finance-admins now: 1")
		assert.Regexp(t, `E100091\s+ana\.test\s+.*approved by E100008`, out)

		out, _, err = runCmd(t, testCfg, nil, accessCmd(l, t), "--app", "scim", "--entitlement", "finance-admins", "-o", "json")
		require.NoError(t, err)
		var rep holdersReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		assert.Equal(t, "scim", rep.Application)
		assert.Equal(t, "finance-admins", rep.Entitlement)
		require.Len(t, rep.Holders, 1)
		assert.Equal(t, "E100008", rep.Holders[0].Approver)
	})
	t.Run("nobody holds, with a policy hint", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, nil, accessCmd(l, t), "--app", "scim", "--entitlement", "no-such-group")
		require.NoError(t, err)
		assert.Contains(t, out, "Nobody holds scim/no-such-group now")
		assert.Contains(t, out, `has no entitlement "no-such-group" in scim`)

		out, _, err = runCmd(t, testCfg, nil, accessCmd(l, t), "--app", "scim", "--entitlement", "x", "-o", "json")
		require.NoError(t, err)
		assert.JSONEq(t, `{"application":"scim","entitlement":"x","holders":[]}`, out)
	})
	t.Run("audit table", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, nil, auditCmd(l, t, now), id)
		require.NoError(t, err)
		assert.Contains(t, out, "Access changes for E100091: 4, oldest first")
		assert.Regexp(t, `(?s)created\s+scim\s+ana\.test\s+-\s+joiner.*granted\s+scim\s+ana\.test\s+engineering.*granted\s+scim\s+ana\.test\s+finance-admins\s+joiner: approved by E100008.*revoked\s+scim\s+ana\.test\s+engineering\s+mover: rules role:engineer`, out)
		assert.Contains(t, out, "mover-E100091-abc  http://ui/namespaces/default/workflows/mover-E100091-abc/run-2/history")
		assert.Regexp(t, `TIME\s+ACTION\s+APPLICATION\s+ACCOUNT\s+ENTITLEMENT\s+WHY\s+POLICY\s+WORKFLOW\s+VERIFIED\n`, out)
		assert.Regexp(t, `created\s+scim\s+ana\.test\s+-\s+joiner: rules everyone, role:engineer\s+0123456789ab\s+onboarding-E100091\s+-\n`, out,
			"a create is not verified, nor said to be unverified")
		assert.Regexp(t, `revoked\s+scim\s+.*mover-E100091-abc\s+not verified\n`, out, "a revoke from before verification")
	})
	t.Run("audit since", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, nil, auditCmd(l, t, now), id, "--since", "2026-01-06", "-o", "json")
		require.NoError(t, err)
		assert.Equal(t, time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC), l.since)
		var rep auditReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		require.Len(t, rep.Entries, 1)
		assert.Equal(t, ledger.ActionRevoked, rep.Entries[0].Action)
		assert.Equal(t, "http://ui/namespaces/default/workflows/mover-E100091-abc/run-2/history", rep.Entries[0].URL)
		assert.Contains(t, out, `"since": "2026-01-06T00:00:00Z"`)
	})
	t.Run("nothing", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, nil, accessCmd(l, t), "E100092")
		require.NoError(t, err)
		assert.Contains(t, out, "E100092 holds nothing in any application")
		out, _, err = runCmd(t, testCfg, nil, auditCmd(l, t, now), "E100092", "-o", "json")
		require.NoError(t, err)
		assert.JSONEq(t, `{"employeeId":"E100092","entries":[]}`, out)
	})
}

func TestAuditShowsVerification(t *testing.T) {
	id, trail := fixture()
	requested := time.Date(2026, 2, 2, 17, 0, 0, 0, time.UTC)
	leaver := func(seq int64, app string, action ledger.Action, ent, how string) ledger.Entry {
		e := ledger.Entry{Seq: seq, At: requested.Add(time.Duration(seq) * time.Second), EmployeeID: id, Application: app,
			Account: "ana.test", Entitlement: ent, Action: action, Justification: ledger.Justification{Event: ledger.EventLeaver},
			WorkflowID: "offboarding-" + id, RunID: "run-3", ActivityID: fmt.Sprint(seq)}
		if how != "" {
			e.RequestedAt, e.VerifiedAt, e.VerifiedBy = requested, e.At, how
		}
		return e
	}
	trail = append(trail,
		leaver(5, "scim", ledger.ActionDisabled, "", ledger.VerifiedReadBack),
		leaver(6, "scim", ledger.ActionRevoked, "finance-admins", ledger.VerifiedReadBack),
		leaver(7, "ldap", ledger.ActionDeleted, "", ledger.VerifiedFallbackDelete))
	l := &fakeLedger{trail: map[string][]ledger.Entry{id: trail}}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

	out, _, err := runCmd(t, testCfg, nil, auditCmd(l, t, now), id)
	require.NoError(t, err)
	at := func(seq int) string { return localTime(requested.Add(time.Duration(seq) * time.Second)) }
	for _, want := range []string{
		`disabled\s+scim\s+ana\.test\s+-\s+leaver\s+-\s+offboarding-E100091\s+read-back at ` + at(5) + ` \(requested ` + localTime(requested) + `\)\n`,
		`revoked\s+scim\s+ana\.test\s+finance-admins\s+leaver\s+-\s+offboarding-E100091\s+read-back at ` + at(6),
		`deleted\s+ldap\s+ana\.test\s+-\s+leaver\s+-\s+offboarding-E100091\s+fallback-delete at ` + at(7),
	} {
		assert.Regexp(t, want, out)
	}

	out, _, err = runCmd(t, testCfg, nil, auditCmd(l, t, now), id, "-o", "json")
	require.NoError(t, err)
	var raw struct {
		Entries []map[string]any `json:"entries"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	require.Len(t, raw.Entries, 7)
	assert.Equal(t, "fallback-delete", raw.Entries[6]["verifiedBy"])
	assert.Equal(t, "2026-02-02T17:00:07Z", raw.Entries[6]["verifiedAt"])
	assert.Equal(t, "2026-02-02T17:00:00Z", raw.Entries[6]["requestedAt"])
	for _, k := range []string{"requestedAt", "verifiedAt", "verifiedBy"} {
		assert.NotContains(t, raw.Entries[3], k, "an unverified revoke has no %s", k)
	}
}

func TestVerification(t *testing.T) {
	requested := time.Date(2026, 2, 2, 17, 0, 0, 0, time.UTC)
	verifiedAt := requested.Add(3 * time.Second)
	tests := []struct {
		name string
		e    ledger.Entry
		want string
	}{
		{"a grant is not verified", ledger.Entry{Action: ledger.ActionGranted}, "-"},
		{"nor a create", ledger.Entry{Action: ledger.ActionCreated}, "-"},
		{"a disable from before verification", ledger.Entry{Action: ledger.ActionDisabled}, "not verified"},
		{"a read-back", ledger.Entry{Action: ledger.ActionRevoked, RequestedAt: requested, VerifiedAt: verifiedAt, VerifiedBy: ledger.VerifiedReadBack},
			"read-back at " + localTime(verifiedAt) + " (requested " + localTime(requested) + ")"},
		{"a fallback delete", ledger.Entry{Action: ledger.ActionDeleted, RequestedAt: requested, VerifiedAt: verifiedAt, VerifiedBy: ledger.VerifiedFallbackDelete},
			"fallback-delete at " + localTime(verifiedAt) + " (requested " + localTime(requested) + ")"},
		{"verified without a request time", ledger.Entry{Action: ledger.ActionDeleted, VerifiedAt: verifiedAt, VerifiedBy: ledger.VerifiedReadBack},
			"read-back at " + localTime(verifiedAt)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, verification(tt.e))
		})
	}
}

func TestLedgerCommandsReportLedgerErrors(t *testing.T) {
	l := &fakeLedger{err: errors.New("boom")}
	_, _, err := runCmd(t, testCfg, nil, accessCmd(l, t), "E100001")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read the access ledger: boom")
	_, _, err = runCmd(t, testCfg, nil, auditCmd(l, t, time.Now()), "E100001")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read the access ledger: boom")
}

// TestLedgerCommandsOnPostgreSQL writes a trail with Store.Record into the
// real store and reads it back through the commands and their production
// ledger opener.
func TestLedgerCommandsOnPostgreSQL(t *testing.T) {
	cfg, err := config.FromEnv()
	require.NoError(t, err)
	cfg.UIURL, cfg.TemporalNamespace, cfg.PolicyFile = "http://ui", "default", testCfg.PolicyFile
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := store.Open(ctx, cfg.StoreURL)
	require.NoError(t, err, "PostgreSQL must be up: run `make stack`")
	defer pool.Close()
	st := ledger.New(pool)

	// The ledger is append-only and shared: an employee ID with no entries
	// yet, and names unique to this run, keep earlier runs out of the
	// answers.
	var id string
	for range 20 {
		n, err := rand.Int(rand.Reader, big.NewInt(100000))
		require.NoError(t, err)
		id = fmt.Sprintf("E7%05d", n.Int64())
		trail, err := st.Trail(ctx, id, time.Time{})
		require.NoError(t, err)
		if len(trail) == 0 {
			break
		}
	}
	ent := fmt.Sprintf("ledger-cmd-test-%d", time.Now().UnixNano())
	wf := "onboarding-" + id
	run := fmt.Sprintf("run-%d", time.Now().UnixNano())
	approvedAt := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	entries := []ledger.Entry{
		{Application: "scim", Account: "ana." + id, Action: ledger.ActionCreated,
			Justification: ledger.Justification{Event: ledger.EventJoiner, Rules: []string{"everyone"}}},
		{Application: "scim", Account: "ana." + id, Action: ledger.ActionGranted, Entitlement: ent,
			Justification: ledger.Justification{Event: ledger.EventJoiner, ApprovalID: wf + "/scim/" + ent, Approver: "E100008", ApprovedAt: approvedAt}},
		{Application: "ldap", Account: "ana." + id, Action: ledger.ActionCreated,
			Justification: ledger.Justification{Event: ledger.EventJoiner, Rules: []string{"everyone"}}},
		{Application: "ldap", Account: "ana." + id, Action: ledger.ActionDisabled,
			Justification: ledger.Justification{Event: ledger.EventLeaver, Note: "end of contract"},
			RequestedAt:   approvedAt.Add(time.Minute), VerifiedAt: approvedAt.Add(2 * time.Minute), VerifiedBy: ledger.VerifiedReadBack},
	}
	for i, e := range entries {
		e.EmployeeID, e.WorkflowID, e.RunID, e.ActivityID, e.PolicyVersion = id, wf, run, fmt.Sprint(i), "feedface0123456789"
		wrote, err := st.Record(ctx, e)
		require.NoError(t, err)
		require.True(t, wrote)
	}
	link := cfg.RunURL(wf, run)

	out, _, err := runCmd(t, cfg, nil, newAccessCmd, id, "-o", "json")
	require.NoError(t, err, out)
	var acc accessReport
	require.NoError(t, json.Unmarshal([]byte(out), &acc))
	require.Len(t, acc.Holdings, 3)
	assert.Equal(t, "ldap", acc.Holdings[0].Application)
	assert.Equal(t, ledger.StateDisabled, acc.Holdings[0].State)
	assert.Equal(t, ledger.StateEnabled, acc.Holdings[1].State)
	assert.Equal(t, ent, acc.Holdings[2].Entitlement)
	assert.Equal(t, "E100008", acc.Holdings[2].Approver)
	assert.True(t, approvedAt.Equal(acc.Holdings[2].ApprovedAt))
	assert.Equal(t, link, acc.Holdings[2].URL)

	out, _, err = runCmd(t, cfg, nil, newAccessCmd, id)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Access of "+id+" now: 2 account(s) (1 disabled), 1 entitlement(s)")
	assert.Regexp(t, `ldap\s+ana\.`+id+`\s+-\s+disabled\s+.*leaver: end of contract`, out)
	assert.Contains(t, out, "approved by E100008")
	assert.Contains(t, out, link)

	out, _, err = runCmd(t, cfg, nil, newAccessCmd, "--app", "scim", "--entitlement", ent)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Holders of scim/"+ent+" now: 1")
	assert.Regexp(t, id+`\s+ana\.`+id, out)

	out, _, err = runCmd(t, cfg, nil, newAuditCmd, id, "-o", "json")
	require.NoError(t, err, out)
	var aud auditReport
	require.NoError(t, json.Unmarshal([]byte(out), &aud))
	require.Len(t, aud.Entries, 4)
	for i, e := range aud.Entries {
		assert.Equal(t, entries[i].Action, e.Action, "entry %d", i)
		assert.Equal(t, link, e.URL)
	}
	assert.Equal(t, ledger.VerifiedReadBack, aud.Entries[3].VerifiedBy)
	assert.True(t, approvedAt.Add(2*time.Minute).Equal(aud.Entries[3].VerifiedAt))
	assert.True(t, approvedAt.Add(time.Minute).Equal(aud.Entries[3].RequestedAt))
	assert.Empty(t, aud.Entries[0].VerifiedBy)

	out, _, err = runCmd(t, cfg, nil, newAuditCmd, id, "--since", "1h")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Access changes for "+id+" since ")
	assert.Contains(t, out, ": 4, oldest first")
	assert.Regexp(t, `disabled\s+ldap\s+.*read-back at `+localTime(approvedAt.Add(2*time.Minute)), out)
}

func TestOpenStoreNamesTheStoreWithoutItsPassword(t *testing.T) {
	cfg := config.Config{StoreURL: "postgres://u:s3cret@127.0.0.1:1/provisio?sslmode=disable&connect_timeout=1"}
	_, err := openStore(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect to the store at")
	assert.NotContains(t, err.Error(), "s3cret")
}
