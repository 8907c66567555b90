package e2e

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/workflows"
)

// The JSON the operator's read commands print, decoded here with the
// documented field names: a renamed field fails this test.
type (
	opRun struct {
		WorkflowID     string     `json:"workflowId"`
		RunID          string     `json:"runId"`
		Type           string     `json:"type"`
		Status         string     `json:"status"`
		EmployeeID     string     `json:"employeeId"`
		Event          string     `json:"event"`
		State          string     `json:"state"`
		NeedsAttention bool       `json:"needsAttention"`
		Started        time.Time  `json:"started"`
		Closed         *time.Time `json:"closed"`
		URL            string     `json:"url"`
	}
	opRuns struct {
		Query     string  `json:"query"`
		Runs      []opRun `json:"runs"`
		Truncated bool    `json:"truncated"`
	}
	opHolding struct {
		EmployeeID    string    `json:"employeeId"`
		Application   string    `json:"application"`
		Account       string    `json:"account"`
		Entitlement   string    `json:"entitlement"`
		State         string    `json:"state"`
		Since         time.Time `json:"since"`
		Event         string    `json:"event"`
		Rules         []string  `json:"rules"`
		PolicyVersion string    `json:"policyVersion"`
		WorkflowID    string    `json:"workflowId"`
		RunID         string    `json:"runId"`
		URL           string    `json:"url"`
	}
	opStatus struct {
		EmployeeID       string      `json:"employeeId"`
		Summary          string      `json:"summary"`
		Access           []opHolding `json:"access"`
		LedgerError      string      `json:"ledgerError"`
		PendingApprovals []any       `json:"pendingApprovals"`
		Runs             []opRun     `json:"runs"`
	}
	opAccess struct {
		EmployeeID string      `json:"employeeId"`
		Holdings   []opHolding `json:"holdings"`
	}
	opHolders struct {
		Application string      `json:"application"`
		Entitlement string      `json:"entitlement"`
		Holders     []opHolding `json:"holders"`
	}
	opEntry struct {
		Seq           int64     `json:"seq"`
		At            time.Time `json:"at"`
		EmployeeID    string    `json:"employeeId"`
		Application   string    `json:"application"`
		Account       string    `json:"account"`
		Entitlement   string    `json:"entitlement"`
		Action        string    `json:"action"`
		Event         string    `json:"event"`
		PolicyVersion string    `json:"policyVersion"`
		WorkflowID    string    `json:"workflowId"`
		RunID         string    `json:"runId"`
		URL           string    `json:"url"`
	}
	opAudit struct {
		EmployeeID string    `json:"employeeId"`
		Entries    []opEntry `json:"entries"`
	}
)

// cliJSON runs a read command with --output json and decodes its output.
func cliJSON(t *testing.T, bin string, cfg config.Config, v any, args ...string) {
	t.Helper()
	out, err := runCLI(t, bin, cfg, append(args, "--output", "json")...)
	require.NoError(t, err, out)
	// runCLI mixes stderr in; warnings would break the JSON, and there
	// must be none.
	// Decoding into a used value would keep the fields an element of a
	// reused slice does not repeat (omitempty): start from zero.
	reflect.ValueOf(v).Elem().SetZero()
	require.NoError(t, json.Unmarshal([]byte(out), v), out)
}

// held is "application/entitlement" ("application/" for the account) of
// each holding, sorted.
func held(hs []opHolding) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.Application+"/"+h.Entitlement)
	}
	slices.Sort(out)
	return out
}

// TestOperatorReadCommandsAgree hires a person on the real stack, then asks
// runs, status, access and audit about them, and checks that the commands
// agree with each other, with the run's result and with the applications;
// then terminates them and checks the same again.
func TestOperatorReadCommandsAgree(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The ledger is append-only: take an employee ID nobody used yet.
	employee := newEmployeeID(t)
	for {
		var a opAudit
		cliJSON(t, bin, cfg, &a, "audit", employee)
		if len(a.Entries) == 0 {
			break
		}
		employee = newEmployeeID(t)
	}
	file := writePerson(t, newTestPerson(employee, "Olga", "Operätor"))
	out, err := runCLI(t, bin, cfg, "hire", "-f", file, "--wait")
	require.NoError(t, err, out)
	onbID := workflows.OnboardingID(employee)
	var hired workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, onbID, "").Get(ctx, &hired))
	username := hired.Username
	require.NotEmpty(t, username)
	t.Cleanup(func() {
		_ = c.TerminateWorkflow(context.Background(), workflows.OffboardingID(employee), "", "e2e cleanup")
		for _, conn := range deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: username})
		}
	})
	desc, err := c.DescribeWorkflow(ctx, onbID, "")
	require.NoError(t, err)
	onbRun := desc.WorkflowExecution.RunID
	onbURL := cfg.RunURL(onbID, onbRun)

	// What the run says the person holds, as the ledger keys it.
	var want []string
	for _, a := range hired.Accounts {
		want = append(want, a.Application+"/")
		for _, e := range a.Entitlements {
			want = append(want, a.Application+"/"+e)
		}
	}
	slices.Sort(want)
	require.NotEmpty(t, hired.Accounts)

	// runs: the onboarding, found by the employee ID (visibility is
	// eventually consistent: wait until it shows the run closed).
	var runs opRuns
	require.Eventually(t, func() bool {
		cliJSON(t, bin, cfg, &runs, "runs", "--employee", employee)
		return len(runs.Runs) == 1 && runs.Runs[0].Status == "completed"
	}, 20*time.Second, 500*time.Millisecond, "runs --employee lists the finished onboarding")
	assert.Equal(t, "EmployeeId = '"+employee+"'", runs.Query)
	assert.Equal(t, opRun{
		WorkflowID: onbID, RunID: onbRun, Type: "Onboarding", Status: "completed", EmployeeID: employee,
		Event: "joiner", State: "completed", Started: runs.Runs[0].Started, Closed: runs.Runs[0].Closed, URL: onbURL,
	}, runs.Runs[0])
	require.NotNil(t, runs.Runs[0].Closed)

	// The filters narrow it: the joiner is found, no leaver yet.
	var filtered opRuns
	cliJSON(t, bin, cfg, &filtered, "runs", "--employee", employee, "--event", "joiner", "--type", "Onboarding", "--status", "completed")
	require.Len(t, filtered.Runs, 1)
	cliJSON(t, bin, cfg, &filtered, "runs", "--employee", employee, "--event", "leaver")
	assert.Empty(t, filtered.Runs)
	out, err = runCLI(t, bin, cfg, "runs", "--employee", employee)
	require.NoError(t, err, out)
	assert.Contains(t, out, onbURL, "the table prints the UI link")

	// status: the same run, the ledger's access, nothing pending.
	var st opStatus
	cliJSON(t, bin, cfg, &st, "status", employee)
	assert.Empty(t, st.LedgerError)
	assert.True(t, strings.HasPrefix(st.Summary, "active: "), st.Summary)
	require.Len(t, st.Runs, 1)
	assert.Equal(t, runs.Runs[0].URL, st.Runs[0].URL)
	assert.Equal(t, "completed", st.Runs[0].Status)
	assert.Empty(t, st.PendingApprovals)
	assert.Equal(t, want, held(st.Access), "status shows what the onboarding gave")
	for _, h := range st.Access {
		assert.Equal(t, employee, h.EmployeeID)
		assert.Equal(t, username, h.Account)
		assert.Equal(t, onbID, h.WorkflowID)
		assert.Equal(t, onbRun, h.RunID)
		assert.Equal(t, onbURL, h.URL)
		assert.Equal(t, hired.PolicyVersion, h.PolicyVersion)
		assert.Equal(t, "joiner", h.Event)
		if h.Entitlement == "" {
			assert.Equal(t, "enabled", h.State)
		} else {
			assert.Equal(t, "granted", h.State)
			assert.NotEmpty(t, h.Rules, "a rule-based grant names its rules: %s/%s", h.Application, h.Entitlement)
		}
	}

	// The applications hold exactly what the ledger says.
	for _, a := range hired.Accounts {
		got, err := deps.Activities.Connectors[a.Application].GetAccount(ctx, connectors.AccountRequest{Username: username})
		require.NoError(t, err, a.Application)
		var ledgerEnts []string
		for _, h := range st.Access {
			if h.Application == a.Application && h.Entitlement != "" {
				ledgerEnts = append(ledgerEnts, h.Entitlement)
			}
		}
		assert.ElementsMatch(t, got.Entitlements, ledgerEnts, a.Application)
		assert.False(t, got.Disabled, a.Application)
	}

	// access: the same holdings as status, in table and JSON.
	var acc opAccess
	cliJSON(t, bin, cfg, &acc, "access", employee)
	assert.Equal(t, st.Access, acc.Holdings)
	out, err = runCLI(t, bin, cfg, "access", employee)
	require.NoError(t, err, out)
	for _, h := range acc.Holdings {
		assert.Regexp(t, h.Application+`\s+`+username+`\s+`+orDashE(h.Entitlement)+`\s+`+h.State, out)
	}
	assert.Contains(t, out, onbURL)

	// access --app --entitlement: the person is among the holders.
	var grant opHolding
	for _, h := range acc.Holdings {
		if h.Entitlement != "" {
			grant = h
			break
		}
	}
	require.NotEmpty(t, grant.Entitlement)
	var holders opHolders
	cliJSON(t, bin, cfg, &holders, "access", "--app", grant.Application, "--entitlement", grant.Entitlement)
	assert.Contains(t, holders.Holders, grant)

	// audit: one created per account and one granted per entitlement, all
	// by the onboarding run, oldest first; folding it gives the holdings.
	var aud opAudit
	cliJSON(t, bin, cfg, &aud, "audit", employee)
	var trail []string
	for i, e := range aud.Entries {
		if i > 0 {
			assert.Greater(t, e.Seq, aud.Entries[i-1].Seq, "oldest first")
		}
		assert.Equal(t, onbID, e.WorkflowID)
		assert.Equal(t, onbURL, e.URL)
		switch e.Action {
		case "created":
			trail = append(trail, e.Application+"/")
		case "granted":
			trail = append(trail, e.Application+"/"+e.Entitlement)
		default:
			t.Errorf("a joiner's trail has only created and granted entries, got %s", e.Action)
		}
	}
	slices.Sort(trail)
	assert.Equal(t, want, trail)
	var recent opAudit
	cliJSON(t, bin, cfg, &recent, "audit", employee, "--since", "1h")
	assert.Len(t, recent.Entries, len(aud.Entries))
	out, err = runCLI(t, bin, cfg, "audit", employee, "--since", "2999-01-01")
	require.Error(t, err, out)
	assert.Contains(t, out, "is in the future")

	// The kill switch: the commands now tell of a leaver.
	out, err = runCLI(t, bin, cfg, "terminate", employee, "--wait")
	require.NoError(t, err, out)
	offID := workflows.OffboardingID(employee)
	require.Eventually(t, func() bool {
		cliJSON(t, bin, cfg, &runs, "runs", "--employee", employee, "--event", "leaver")
		return len(runs.Runs) == 1 && runs.Runs[0].State == workflows.StateRetention
	}, 20*time.Second, 500*time.Millisecond, "runs --event leaver lists the offboarding in retention")
	assert.Equal(t, offID, runs.Runs[0].WorkflowID)

	cliJSON(t, bin, cfg, &st, "status", employee)
	assert.Equal(t, "leaver: access removed (verified), disabled accounts kept until deletion", st.Summary,
		"every application read the revocation back")
	require.Len(t, st.Runs, 2)
	assert.Equal(t, offID, st.Runs[0].WorkflowID, "newest first")
	for _, h := range st.Access {
		assert.Empty(t, h.Entitlement, "every entitlement is revoked")
		assert.Equal(t, "disabled", h.State, h.Application)
		assert.Equal(t, offID, h.WorkflowID)
	}
	assert.Len(t, st.Access, len(hired.Accounts), "the disabled accounts are kept until deletion")
	cliJSON(t, bin, cfg, &acc, "access", employee)
	assert.Equal(t, st.Access, acc.Holdings)
	cliJSON(t, bin, cfg, &holders, "access", "--app", grant.Application, "--entitlement", grant.Entitlement)
	for _, h := range holders.Holders {
		assert.NotEqual(t, employee, h.EmployeeID, "a leaver holds nothing")
	}
	cliJSON(t, bin, cfg, &aud, "audit", employee)
	var disabled, revoked int
	for _, e := range aud.Entries {
		switch e.Action {
		case "disabled":
			disabled++
			assert.Equal(t, "leaver", e.Event)
		case "revoked":
			revoked++
			assert.Equal(t, offID, e.WorkflowID)
		}
	}
	assert.Equal(t, len(hired.Accounts), disabled)
	assert.Equal(t, len(want)-len(hired.Accounts), revoked)
}

func orDashE(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
