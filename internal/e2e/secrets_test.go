package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/internal/codec"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/internal/webhook"
	"github.com/provisio-dev/provisio/workflows"
)

// withPassword puts password into a postgres:// URL that has a user but
// none, and returns the URL and the password it ends up with. PostgreSQL
// of the local stack trusts local connections, so the password is sent to
// nobody: it is a canary that must never reach a history. Other forms are
// returned as they are, with their password if one is visible.
func withPassword(raw, password string) (string, string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.User == nil {
		return raw, ""
	}
	if pw, ok := u.User.Password(); ok {
		return raw, pw
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), password
}

// leaks reports whether secret occurs in blob. A short secret (the dev
// stack's LDAP password is "admin") is also a word inside ordinary names
// such as postgres/prod_admin, so for it only a whole token counts.
func leaks(blob []byte, secret string) bool {
	if len(secret) >= 12 {
		return bytes.Contains(blob, []byte(secret))
	}
	word := func(i int) bool {
		if i < 0 || i >= len(blob) {
			return false
		}
		c := blob[i]
		return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for from := 0; ; {
		i := bytes.Index(blob[from:], []byte(secret))
		if i < 0 {
			return false
		}
		start := from + i
		if !word(start-1) && !word(start+len(secret)) {
			return true
		}
		from = start + 1
	}
}

// postEvent sends ev to the webhook as HR would, signed with secret.
func postEvent(t *testing.T, base, secret string, ev events.Event) map[string]any {
	t.Helper()
	body, err := json.Marshal(ev)
	require.NoError(t, err)
	ts := time.Now().Unix()
	req, err := http.NewRequest(http.MethodPost, base+webhook.EventsPath, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(secret), ts, body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s event: %s", ev.Type, data)
	var out map[string]any
	require.NoError(t, json.Unmarshal(data, &out))
	return out
}

// TestNoSecretsInHistories takes one person through every workflow type —
// a hire that waits for two approvals, a move, a temporary grant approved
// and revoked, a termination — entering through the HR webhook signed with
// the test's own secret, with encryption on and a canary password in the
// PostgreSQL URL. Then it reads every run of the person as the server
// stores it (history, description, visibility) and as an operator with the
// key reads it (decoded), and finds no password, token, webhook secret or
// codec key in any of it: payloads, memos, search attributes, headers and
// failure messages included.
func TestNoSecretsInHistories(t *testing.T) {
	cfg := withEncryption(t, testConfig(t))
	var pgPassword, storePassword string
	cfg.Postgres.URL, pgPassword = withPassword(cfg.Postgres.URL, "pg-canary-"+randomHex(t, 12))
	cfg.StoreURL, storePassword = withPassword(cfg.StoreURL, "store-canary-"+randomHex(t, 12))
	cfg.Webhook.Secret = "whsec-" + randomHex(t, 24)

	secrets := map[string]string{
		"LDAP bind password":                  cfg.LDAP.Password,
		"SCIM token":                          cfg.SCIM.Token,
		"webhook secret":                      cfg.Webhook.Secret,
		"PostgreSQL password (PG_URL)":        pgPassword,
		"PostgreSQL password (store)":         storePassword,
		"the whole PG_URL with its password":  cfg.Postgres.URL,
		"the whole store URL with a password": cfg.StoreURL,
	}
	for _, entry := range strings.Split(codec.FormatKeys(cfg.Codec.Keys), ",") {
		id, b64, _ := strings.Cut(entry, ":")
		secrets["codec key "+id+" (base64)"] = b64
		material, err := base64.StdEncoding.DecodeString(b64)
		require.NoError(t, err)
		secrets["codec key "+id+" (bytes)"] = string(material)
	}
	for name, s := range secrets {
		if s == "" {
			delete(secrets, name)
		}
	}
	require.Contains(t, secrets, "webhook secret")
	require.Contains(t, secrets, "PostgreSQL password (PG_URL)", "the stack's PG_URL takes a canary password")

	// The person, in a copy of the roster: the worker routes the
	// temporary grant's approval to the manager it finds there.
	employee := newEmployeeID(t)
	person := newTestPerson(employee, "Sec", "Retkeeper")
	person.Department, person.Title, person.ManagerID = "Finance", "Controller", tempManager
	roster, err := os.ReadFile(cfg.RosterFile)
	require.NoError(t, err)
	row := strings.Join([]string{person.EmployeeID, person.GivenName, person.FamilyName, person.Email, person.Department,
		person.Title, person.ManagerID, person.Location, person.EmploymentType, person.StartDate.String(), "", person.Status}, ",")
	cfg.RosterFile = filepath.Join(t.TempDir(), "roster.csv")
	require.NoError(t, os.WriteFile(cfg.RosterFile, append(roster, []byte(row+"\n")...), 0o600))
	_, known := readRoster(t, cfg.RosterFile)

	c, deps := startWorker(t, cfg)
	raw := rawClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	// The HR webhook, in-process, with this test's secret.
	pool, err := store.Open(ctx, cfg.StoreURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	hook := httptest.NewServer(webhook.NewMux(&webhook.Handler{
		Secret:  []byte(cfg.Webhook.Secret),
		Starter: &events.Starter{Client: c, Config: cfg, People: known},
		Replays: webhook.NewPGReplays(pool),
		Logger:  slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(hook.Close)

	hireID := workflows.OnboardingID(employee)
	grantID := workflows.TemporaryAccessID(employee, "postgres", "prod_admin")
	offID := workflows.OffboardingID(employee)
	t.Cleanup(func() {
		_ = c.TerminateWorkflow(context.Background(), offID, "", "e2e cleanup")
		_ = c.TerminateWorkflow(context.Background(), grantID, "", "e2e cleanup")
		cleanupHire(t, c, deps.Activities.Connectors, hireID)
	})

	// decide sends an approval as the CLI does, retrying while the run is
	// not yet waiting for this approver.
	decide := func(reqID, approver string) {
		t.Helper()
		wfID, _, _, err := workflows.ParseApprovalRequestID(reqID)
		require.NoError(t, err)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: wfID, UpdateName: workflows.UpdateDecide, WaitForStage: client.WorkflowUpdateStageCompleted,
				Args: []any{workflows.DecideInput{RequestID: reqID, ApproverID: approver, Approve: true, Comment: "secrets e2e"}},
			})
			if err == nil {
				err = h.Get(ctx, nil)
			}
			if err == nil {
				return
			}
			require.True(t, time.Now().Before(deadline), "%s approves %s: %v", approver, reqID, err)
			time.Sleep(time.Second)
		}
	}

	// 1. A hire that waits for the manager, then the SCIM owner.
	postEvent(t, hook.URL, cfg.Webhook.Secret, events.Event{Type: events.TypeHire, Person: &person})
	hireReq := workflows.ApprovalRequestID(hireID, "scim", "finance-admins")
	decide(hireReq, tempManager)
	decide(hireReq, e2eOwner)
	var hired workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, hireID, "").Get(ctx, &hired))
	require.NotEmpty(t, hired.Username)

	// 2. A move to engineering.
	moved := person
	moved.Department, moved.Title = "Engineering", "Software Engineer"
	postEvent(t, hook.URL, cfg.Webhook.Secret, events.Event{Type: events.TypeMove, Person: &moved})
	var movedRes workflows.MoverResult
	require.NoError(t, waitRun(ctx, c, workflows.MoverID(employee, workflows.MoverChangeKey(moved)), &movedRes))

	// 3. Temporary access, approved by manager and owner, revoked early.
	postEvent(t, hook.URL, cfg.Webhook.Secret, events.Event{Type: events.TypeRequestAccess, EmployeeID: employee,
		Entitlement: "postgres/prod_admin", Duration: "1h", Justification: "secrets e2e", RequestedBy: employee})
	grantReq := workflows.ApprovalRequestID(grantID, "postgres", "prod_admin")
	decide(grantReq, tempManager)
	decide(grantReq, tempOwner)
	require.Eventually(t, func() bool {
		var st workflows.TemporaryAccessState
		v, err := c.QueryWorkflow(ctx, grantID, "", workflows.QueryState)
		return err == nil && v.Get(&st) == nil && st.State == workflows.StateActive
	}, time.Minute, 500*time.Millisecond, "the grant becomes active")
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: grantID, UpdateName: workflows.UpdateRevoke, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{workflows.RevokeInput{RequestedBy: tempManager, Reason: "secrets e2e"}},
	})
	require.NoError(t, err)
	require.NoError(t, h.Get(ctx, nil))
	var grant workflows.TemporaryAccessResult
	require.NoError(t, c.GetWorkflow(ctx, grantID, "").Get(ctx, &grant))
	assert.Equal(t, workflows.StateRevoked, grant.State)

	// 4. A termination: access removed, accounts kept for retention.
	postEvent(t, hook.URL, cfg.Webhook.Secret, events.Event{Type: events.TypeTerminate, EmployeeID: employee, Reason: "secrets e2e"})
	require.NoError(t, waitState(ctx, c, offID, workflows.StateRetention))

	// Every run of the person: what visibility lists, and the person's
	// event sequencer, which carries no employee search attribute of its
	// own.
	type runRef struct{ id, runID, typ string }
	var runs []runRef
	listed, err := raw.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: cfg.TemporalNamespace, Query: "EmployeeId = '" + employee + "'",
	})
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, e := range listed.GetExecutions() {
		runs = append(runs, runRef{e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), e.GetType().GetName()})
		seen[e.GetExecution().GetWorkflowId()+"/"+e.GetExecution().GetRunId()] = true
	}
	if d, err := raw.DescribeWorkflow(ctx, workflows.PersonEventsID(employee), ""); err == nil {
		ex := d.RawResponse.GetWorkflowExecutionInfo()
		if !seen[ex.GetExecution().GetWorkflowId()+"/"+ex.GetExecution().GetRunId()] {
			runs = append(runs, runRef{ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId(), ex.GetType().GetName()})
		}
	} else {
		var nf *serviceerror.NotFound
		require.ErrorAs(t, err, &nf)
	}
	types := map[string]bool{}
	for _, r := range runs {
		types[r.typ] = true
	}
	for _, want := range []string{"Onboarding", "Mover", "TemporaryAccess", "Offboarding"} {
		assert.True(t, types[want], "a %s run of %s was checked (runs: %v)", want, employee, runs)
	}

	check := func(what string, blob []byte) {
		t.Helper()
		for name, s := range secrets {
			assert.False(t, leaks(blob, s), "%s holds the %s", what, name)
		}
	}
	check("the visibility listing", wireBytes(t, listed))
	personalSeen := false
	for _, r := range runs {
		stored := runHistory(t, raw, r.id, r.runID)
		decoded := runHistory(t, c, r.id, r.runID)
		require.Len(t, decoded.GetEvents(), len(stored.GetEvents()))
		check("the stored history of "+r.id, wireBytes(t, stored))
		decodedBytes := wireBytes(t, decoded)
		check("the decoded history of "+r.id, decodedBytes)
		personalSeen = personalSeen || bytes.Contains(decodedBytes, []byte(person.Email))
		d, err := raw.DescribeWorkflow(ctx, r.id, r.runID)
		require.NoError(t, err)
		check("the description of "+r.id, wireBytes(t, d.RawResponse))
		t.Logf("checked %s (%s): %d events", r.id, r.typ, len(stored.GetEvents()))
	}
	assert.True(t, personalSeen, "the decoded histories are readable: the person's e-mail is in them")
}
