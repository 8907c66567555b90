package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/reconcile"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/workflows"
)

// reconcileReport mirrors `starter reconcile --output json` (the fields the
// test reads).
type reconcileReport struct {
	RunID        string           `json:"runId"`
	Mode         string           `json:"mode"`
	Status       string           `json:"status"`
	State        string           `json:"state"`
	PlannedFixes int              `json:"plannedFixes"`
	Cap          int              `json:"cap"`
	Fixed        int              `json:"fixed"`
	Failed       int              `json:"failed"`
	Skipped      int              `json:"skipped"`
	Items        []reconcile.Item `json:"items"`
	Apps         []struct {
		App      string `json:"app"`
		Accounts int    `json:"accounts"`
		Error    string `json:"error"`
	} `json:"apps"`
}

// line is an item as "class app account[/entitlement] [action]".
func (r reconcileReport) lines() []string {
	out := make([]string, 0, len(r.Items))
	for _, it := range r.Items {
		s := fmt.Sprintf("%s %s %s", it.Class, it.Application, it.Account)
		if it.Entitlement != "" {
			s += "/" + it.Entitlement
		}
		if it.Action != "" {
			s += " " + string(it.Action)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// runStarter runs the CLI and returns stdout and stderr apart: a held
// fix run prints its JSON report and fails.
func runStarter(t *testing.T, bin string, cfg config.Config, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "PROVISIO_TASK_QUEUE="+cfg.TaskQueue, "PROVISIO_POLICY="+cfg.PolicyFile, "PROVISIO_ROSTER="+cfg.RosterFile)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func reconcileRun(t *testing.T, bin string, cfg config.Config, scope []string, extra ...string) (reconcileReport, string, error) {
	t.Helper()
	args := append([]string{"reconcile", "--wait", "--output", "json"}, scope...)
	out, errOut, err := runStarter(t, bin, cfg, append(args, extra...)...)
	var rep reconcileReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "stdout: %s\nstderr: %s", out, errOut)
	return rep, errOut, err
}

// ldapEntry adds an entry under the people DN behind the system's back and
// removes it when the test ends.
func ldapEntry(t *testing.T, cfg config.Config, uid string, attrs map[string][]string) {
	t.Helper()
	conn, err := goldap.DialURL(cfg.LDAP.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.Bind(cfg.LDAP.BindDN, cfg.LDAP.Password))
	dn := "uid=" + goldap.EscapeDN(uid) + "," + cfg.LDAP.PeopleDN
	req := goldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	req.Attribute("cn", []string{uid})
	req.Attribute("sn", []string{uid})
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	require.NoError(t, conn.Add(req))
	t.Cleanup(func() {
		c, err := goldap.DialURL(cfg.LDAP.URL)
		if err != nil {
			return
		}
		defer c.Close()
		if c.Bind(cfg.LDAP.BindDN, cfg.LDAP.Password) == nil {
			_ = c.Del(goldap.NewDelRequest(dn, nil))
		}
	})
}

// TestReconcileEndToEnd drifts the real applications by hand and checks
// that reconciliation names each drift exactly, heals it in fix mode with
// every fix in the ledger, and that the change cap holds a run whose roster
// was emptied by mistake.
//
// The stack is shared with other tests, so every run is scoped to the
// test's own people and accounts (--employee, --account) and its own
// roster feed (--source).
func TestReconcileEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pool, err := store.Open(ctx, cfg.StoreURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	conns := deps.Activities.Connectors

	// Two engineers, hired through a roster feed of the test's own.
	source := fmt.Sprintf("reconcile-e2e-%d", time.Now().UnixNano())
	anna := newTestPerson(newEmployeeID(t), "Anna", "Recon")
	ben := newTestPerson(newEmployeeID(t), "Ben", "Recon")
	for ben.EmployeeID == anna.EmployeeID {
		ben = newTestPerson(newEmployeeID(t), "Ben", "Recon")
	}
	people := []hr.Person{anna, ben}
	fx := syncFixture{people: people}
	registerSyncCleanup(t, c, conns, pool, fx, source)
	csvFile := filepath.Join(t.TempDir(), "roster.csv")
	require.NoError(t, os.WriteFile(csvFile, []byte(strings.Join(fx.csvLines(t, people), "")), 0o600))
	out, err := runCLI(t, bin, cfg, "sync", "--csv", csvFile, "--source", source)
	require.NoError(t, err, out)
	hired := waitOnboardings(t, ctx, c, people)
	waitNoRunningRuns(t, ctx, c, anna.EmployeeID, ben.EmployeeID)
	annaUser, benUser := hired[anna.EmployeeID].Username, hired[ben.EmployeeID].Username
	require.NotEmpty(t, annaUser)
	require.Equal(t, workflows.StateCompleted, hired[anna.EmployeeID].State)
	var annaSCIM []string
	for _, a := range hired[anna.EmployeeID].Accounts {
		if a.Application == "scim" {
			annaSCIM = a.Entitlements
		}
	}
	require.NotEmpty(t, annaSCIM, "policy gives an engineer SCIM access")

	// Drift, by hand:
	// - an LDAP entry nobody active owns (an employee ID HR never had),
	orphanID := newEmployeeID(t)
	orphan := "rc-orphan-" + strings.ToLower(orphanID)
	ldapEntry(t, cfg, orphan, map[string][]string{"employeeNumber": {orphanID}})
	// - an LDAP entry of nobody at all, and a service account the policy
	//   ignores (svc-*),
	stray := "rc-stray-" + strings.ToLower(orphanID)
	svc := "svc-rc-" + strings.ToLower(orphanID)
	ldapEntry(t, cfg, stray, nil)
	ldapEntry(t, cfg, svc, nil)
	// - a PostgreSQL group role granted by hand to Anna's managed role,
	_, err = pool.Exec(ctx, "GRANT prod_read TO "+pgx.Identifier{annaUser}.Sanitize())
	require.NoError(t, err)
	// - Anna's SCIM user deleted behind the system's back.
	_, err = conns["scim"].DeleteAccount(ctx, connectors.AccountRequest{Username: annaUser})
	require.NoError(t, err)

	scope := []string{"--source", source, "--employee", anna.EmployeeID, "--employee", ben.EmployeeID,
		"--employee", orphanID, "--account", stray, "--account", svc}

	// Report mode names each drift exactly, and changes nothing.
	rep, errOut, err := reconcileRun(t, bin, cfg, scope)
	require.NoError(t, err, errOut)
	assert.Equal(t, "report", rep.Mode)
	assert.Equal(t, workflows.ReconcileCompleted, rep.Status)
	want := []string{
		"excess postgres " + annaUser + "/prod_read revoke",
		"missing scim " + annaUser + " create",
		"orphan ldap " + orphan + " disable",
		"unmanaged ldap " + stray,
		"unmanaged ldap " + svc,
	}
	for _, e := range annaSCIM {
		want = append(want, "missing scim "+annaUser+"/"+e+" grant")
	}
	slices.Sort(want)
	assert.Equal(t, want, rep.lines(), "each drift classified exactly, and nothing of Ben's")
	for _, a := range rep.Apps {
		assert.Empty(t, a.Error, a.App)
	}
	acct, err := conns["ldap"].GetAccount(ctx, connectors.AccountRequest{Username: orphan})
	require.NoError(t, err)
	assert.False(t, acct.Disabled, "report mode changes nothing")

	// Fix mode heals it, through the ledger.
	fix, errOut, err := reconcileRun(t, bin, cfg, scope, "--fix")
	require.NoError(t, err, errOut)
	assert.Equal(t, workflows.ReconcileCompleted, fix.Status)
	assert.Equal(t, len(want)-2, fix.PlannedFixes, "everything but the unmanaged accounts")
	assert.Equal(t, fix.PlannedFixes, fix.Fixed)
	assert.Zero(t, fix.Failed)
	for _, it := range fix.Items {
		if it.Class == reconcile.ClassUnmanaged {
			assert.Equal(t, reconcile.StatusFound, it.Status, "unmanaged items are never touched")
		} else {
			assert.Equal(t, reconcile.StatusFixed, it.Status, it.String())
		}
	}
	recordHistory(t, c, fix.RunID, "", "reconcile-fix-v1")

	acct, err = conns["ldap"].GetAccount(ctx, connectors.AccountRequest{Username: orphan})
	require.NoError(t, err, "an orphan is disabled, never deleted in the same pass")
	assert.True(t, acct.Disabled)
	for _, u := range []string{stray, svc} {
		acct, err = conns["ldap"].GetAccount(ctx, connectors.AccountRequest{Username: u})
		require.NoError(t, err)
		assert.False(t, acct.Disabled, "%s is untouched", u)
	}
	acct, err = conns["postgres"].GetAccount(ctx, connectors.AccountRequest{Username: annaUser})
	require.NoError(t, err)
	assert.NotContains(t, acct.Entitlements, "prod_read")
	acct, err = conns["scim"].GetAccount(ctx, connectors.AccountRequest{Username: annaUser})
	require.NoError(t, err, "the deleted SCIM user is back")
	assert.Equal(t, anna.EmployeeID, acct.EmployeeID)
	assert.ElementsMatch(t, annaSCIM, acct.Entitlements)

	// The ledger records every fix, with the run as the reason.
	lg := ledger.New(pool)
	var fixes []string
	for _, id := range []string{anna.EmployeeID, orphanID} {
		trail, err := lg.Trail(ctx, id, time.Time{})
		require.NoError(t, err)
		for _, e := range trail {
			if e.Event == ledger.EventReconciliation {
				assert.Equal(t, fix.RunID, e.WorkflowID)
				assert.Contains(t, e.Note, "reconciliation "+fix.RunID)
				fixes = append(fixes, fmt.Sprintf("%s %s %s/%s", e.Action, e.Application, e.Account, e.Entitlement))
			}
		}
	}
	wantFixes := []string{
		"disabled ldap " + orphan + "/",
		"revoked postgres " + annaUser + "/prod_read",
		"created scim " + annaUser + "/",
	}
	for _, e := range annaSCIM {
		wantFixes = append(wantFixes, "granted scim "+annaUser+"/"+e)
	}
	assert.ElementsMatch(t, wantFixes, fixes)

	// Afterwards the applications match policy: only the unmanaged
	// accounts remain to report.
	again, errOut, err := reconcileRun(t, bin, cfg, scope)
	require.NoError(t, err, errOut)
	assert.Equal(t, []string{"unmanaged ldap " + stray, "unmanaged ldap " + svc}, again.lines())

	// A roster emptied by mistake: the cap holds the fix run before it
	// changes anything, and a rejection ends it with nothing changed.
	_, err = pool.Exec(ctx, `UPDATE roster_state SET status = 'removed' WHERE source = $1`, source)
	require.NoError(t, err)
	held, errOut, err := reconcileRun(t, bin, cfg, scope, "--fix", "--cap", "2")
	require.Error(t, err, "a held run fails the command")
	t.Cleanup(func() { // a failure below must not leave the run waiting a day
		_ = c.TerminateWorkflow(context.Background(), held.RunID, "", "e2e cleanup")
	})
	assert.Contains(t, errOut, "exceed the cap of 2")
	assert.Equal(t, workflows.StateWaitingApproval, held.State)
	assert.Greater(t, held.PlannedFixes, 2, "every account of both people is now an orphan")
	orphans := 0
	for _, it := range held.Items {
		if it.Class == reconcile.ClassOrphan && (it.Account == annaUser || it.Account == benUser) {
			orphans++
		}
	}
	assert.Equal(t, 6, orphans, "both people's accounts in all three applications")
	for _, u := range []string{annaUser, benUser} {
		acct, err := conns["ldap"].GetAccount(ctx, connectors.AccountRequest{Username: u})
		require.NoError(t, err)
		assert.False(t, acct.Disabled, "nothing changes while the run is held")
	}
	out, err = runCLI(t, bin, cfg, "reconcile", "reject", held.RunID, "--approver", "E100015", "--comment", "the HR export was truncated")
	require.NoError(t, err, out)
	var res workflows.ReconcileResult
	require.NoError(t, c.GetWorkflow(ctx, held.RunID, "").Get(ctx, &res))
	assert.Equal(t, workflows.ReconcileRejected, res.Status)
	require.NotNil(t, res.Approval)
	assert.Equal(t, "E100015", res.Approval.ApproverID)
	assert.Zero(t, res.Fixed)
	for _, u := range []string{annaUser, benUser} {
		for _, app := range []string{"ldap", "postgres", "scim"} {
			acct, err := conns[app].GetAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			assert.False(t, acct.Disabled, "%s in %s: a rejected run changes nothing", u, app)
		}
	}
	recordHistory(t, c, held.RunID, "", "reconcile-rejected-v1")
}

// waitNoRunningRuns waits until visibility lists no running run of the
// people: reconciliation skips a person whose run is in flight, and an
// onboarding's state says completed just before its run closes.
func waitNoRunningRuns(t *testing.T, ctx context.Context, c client.Client, ids ...string) {
	t.Helper()
	query := "EmployeeId IN ('" + strings.Join(ids, "', '") + "') AND ExecutionStatus = 'Running'"
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		require.NoError(t, err)
		if len(resp.GetExecutions()) == 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "runs still running after a minute: %v", resp.GetExecutions())
		time.Sleep(500 * time.Millisecond)
	}
}

// TestReconcileSchedule drives `starter reconcile schedule` against the
// real server: create, show, pause, resume, change, and a triggered run
// that reaches the test's worker; then delete. The schedule ID is fixed
// (reconcile-schedule), so the test refuses to run over one that exists.
func TestReconcileSchedule(t *testing.T) {
	cfg := testConfig(t)
	c, _ := startWorker(t, cfg)
	bin := buildStarter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h := c.ScheduleClient().GetHandle(ctx, workflows.ReconcileScheduleID)
	_, err := h.Describe(ctx)
	require.Error(t, err, "a schedule %s exists on this server: delete it (starter reconcile schedule delete) to run this test", workflows.ReconcileScheduleID)
	t.Cleanup(func() { _ = h.Delete(context.Background()) })

	// Scoped to a person nobody has: the triggered run reads every
	// application and changes nothing.
	nobody := newEmployeeID(t)
	out, err := runCLI(t, bin, cfg, "reconcile", "schedule", "--every", "24h", "--employee", nobody)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Created schedule reconcile-schedule: a report-mode reconciliation every 24h0m0s")
	out, err = runCLI(t, bin, cfg, "reconcile", "schedule", "show")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Schedule reconcile-schedule: active")
	assert.Contains(t, out, "every 24h0m0s")
	assert.Contains(t, out, "next run ")

	out, err = runCLI(t, bin, cfg, "reconcile", "schedule", "pause")
	require.NoError(t, err, out)
	d, err := h.Describe(ctx)
	require.NoError(t, err)
	assert.True(t, d.Schedule.State.Paused)
	out, err = runCLI(t, bin, cfg, "reconcile", "schedule", "resume")
	require.NoError(t, err, out)
	d, err = h.Describe(ctx)
	require.NoError(t, err)
	assert.False(t, d.Schedule.State.Paused)

	out, err = runCLI(t, bin, cfg, "reconcile", "schedule", "--every", "6h", "--fix", "--cap", "3", "--employee", nobody)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Updated schedule reconcile-schedule: a fix-mode reconciliation every 6h0m0s")
	d, err = h.Describe(ctx)
	require.NoError(t, err)
	require.Len(t, d.Schedule.Spec.Intervals, 1)
	assert.Equal(t, 6*time.Hour, d.Schedule.Spec.Intervals[0].Every)

	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var id string
	for deadline := time.Now().Add(time.Minute); id == ""; {
		d, err = h.Describe(ctx)
		require.NoError(t, err)
		for _, a := range d.Info.RecentActions {
			if a.StartWorkflowResult != nil {
				id = a.StartWorkflowResult.WorkflowID
			}
		}
		require.True(t, time.Now().Before(deadline), "the triggered run never started")
		time.Sleep(200 * time.Millisecond)
	}
	assert.True(t, strings.HasPrefix(id, workflows.ReconcileScheduledID+"-"), id)
	var res workflows.ReconcileResult
	require.NoError(t, c.GetWorkflow(ctx, id, "").Get(ctx, &res))
	assert.Equal(t, "fix", res.Mode)
	assert.Equal(t, workflows.ReconcileCompleted, res.Status)
	assert.Equal(t, 3, res.Cap)
	assert.Zero(t, res.PlannedFixes, "nothing of nobody's to fix")

	out, err = runCLI(t, bin, cfg, "reconcile", "schedule", "delete")
	require.NoError(t, err, out)
	_, err = h.Describe(ctx)
	assert.Error(t, err, "deleted")
}
