package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/tclient"
	"github.com/provisio-dev/provisio/workflows"
)

// runTerminate runs `terminate args...` with c as the Temporal client (nil:
// the command must refuse before dialing) and known answering the
// username store.
func runTerminate(t *testing.T, c client.Client, cfg config.Config, known func(string) (bool, error), args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	opts := &rootOptions{out: &out, errOut: &errOut, cfg: cfg,
		dial: func(context.Context, config.Config) (client.Client, error) {
			if c == nil {
				t.Fatal("the command must refuse its input before dialing")
			}
			return keepOpen{c}, nil
		}}
	cmd := newTerminateCmdWith(opts, &terminateOptions{people: staticPeople(func(id string) (bool, error) {
		if known == nil {
			return false, nil
		}
		return known(id)
	})})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd.SetContext(ctx)
	err := cmd.Execute()
	return out.String() + errOut.String(), err
}

// keepOpen is a client the command may Close without closing the test's.
type keepOpen struct{ client.Client }

func (keepOpen) Close() {}

func TestTerminateRefusesBadInputBeforeDialing(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no employee", nil, "accepts 1 arg"},
		{"bad employee ID", []string{"x)(uid=*"}, `employee_id (EMPLOYEE_ID): must be an employee ID, E followed by 6 digits, got "x)(uid=*"`},
		{"bad date", []string{"E100001", "--effective", "31.12.2026"}, "--effective: want YYYY-MM-DD"},
		{"retract with a date", []string{"E100001", "--retract", "--effective", "2026-12-31"}, "[effective retract] were all set"},
		{"retract with wait", []string{"E100001", "--retract", "--wait"}, "were all set"},
		{"wait for a future day", []string{"E100001", "--wait", "--effective", "2999-12-31"}, "access ends only when 2999-12-31 ends"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runTerminate(t, nil, config.Config{}, nil, tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// memConnector is an application in memory, enough for a leaver.
type memConnector struct {
	connectors.Connector
	mu       sync.Mutex
	accounts map[string]*connectors.Account
}

func (m *memConnector) Name() string { return "mem" }

func (m *memConnector) get(op, username string) (*connectors.Account, error) {
	a, ok := m.accounts[username]
	if !ok {
		return nil, connectors.Errorf(connectors.KindNotFound, "mem", op, nil, "account %q does not exist", username)
	}
	return a, nil
}

func (m *memConnector) GetAccount(_ context.Context, req connectors.AccountRequest) (connectors.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.get("GetAccount", req.Username)
	if err != nil {
		return connectors.Account{}, err
	}
	out := *a
	out.Entitlements = append([]string(nil), a.Entitlements...)
	return out, nil
}

// Verify reads the account back like the real connectors' simplest form.
func (m *memConnector) Verify(ctx context.Context, req connectors.VerifyRequest) (connectors.Verification, error) {
	return connectors.VerifyByReading(ctx, m, req)
}

func (m *memConnector) DisableAccount(_ context.Context, req connectors.AccountRequest) (connectors.DisableResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.get("DisableAccount", req.Username)
	if err != nil {
		return connectors.DisableResponse{}, err
	}
	changed := !a.Disabled
	a.Disabled = true
	return connectors.DisableResponse{Changed: changed, SessionsEnded: 2}, nil
}

func (m *memConnector) RevokeEntitlement(_ context.Context, req connectors.EntitlementRequest) (connectors.EntitlementResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.get("RevokeEntitlement", req.Username)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	n := len(a.Entitlements)
	a.Entitlements = deleteString(a.Entitlements, req.Entitlement)
	return connectors.EntitlementResponse{Changed: n != len(a.Entitlements)}, nil
}

func (m *memConnector) DeleteAccount(_ context.Context, req connectors.AccountRequest) (connectors.DeleteResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.accounts[req.Username]
	delete(m.accounts, req.Username)
	return connectors.DeleteResponse{Deleted: ok}, nil
}

func deleteString(list []string, s string) []string {
	var out []string
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// memUsernames is a username store in memory.
type memUsernames map[string]string

func (m memUsernames) Reserve(context.Context, string, string, string) (string, error) {
	return "", errors.New("not used")
}

func (m memUsernames) Lookup(_ context.Context, id string) (string, bool, error) {
	u, ok := m[id]
	return u, ok, nil
}

// memLedger accepts every ledger entry: the activities make no change they
// cannot record, and these tests are about the CLI, not the ledger.
type memLedger struct{}

func (memLedger) Record(context.Context, ledger.Entry) (bool, error) { return true, nil }

// leaverStack is the real Temporal server with a worker of its own that
// runs Offboarding against an in-memory application.
type leaverStack struct {
	c    client.Client
	cfg  config.Config
	app  *memConnector
	user memUsernames
}

func newLeaverStack(t *testing.T) *leaverStack {
	t.Helper()
	cfg, err := config.FromEnv()
	require.NoError(t, err)
	cfg.TaskQueue = fmt.Sprintf("starter-terminate-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := tclient.Dial(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err, "Temporal must be up: run `make stack`")
	s := &leaverStack{c: c, cfg: cfg, app: &memConnector{accounts: map[string]*connectors.Account{}}, user: memUsernames{}}
	// Offboardings run on the revocation queue; a worker only on the main
	// queue would never see them.
	w := worker.New(c, workflows.RevocationTaskQueue(cfg.TaskQueue), worker.Options{})
	w.RegisterWorkflow(workflows.Offboarding)
	w.RegisterActivity(&activities.Activities{Connectors: map[string]connectors.Connector{"mem": s.app}, Usernames: s.user, Ledger: memLedger{}})
	require.NoError(t, w.Start())
	t.Cleanup(func() {
		w.Stop()
		c.Close()
	})
	return s
}

// newEmployee returns an employee ID no earlier test run used, with a
// reserved username.
func (s *leaverStack) newEmployee(t *testing.T) string {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(100000))
	require.NoError(t, err)
	id := fmt.Sprintf("E8%05d", n.Int64())
	s.user[id] = "user." + strings.ToLower(id)
	t.Cleanup(func() {
		// Leave no run waiting for weeks on the shared server.
		_ = s.c.TerminateWorkflow(context.Background(), workflows.OffboardingID(id), "", "test cleanup")
	})
	return id
}

func (s *leaverStack) known(id string) (bool, error) {
	_, ok := s.user[id]
	return ok, nil
}

func (s *leaverStack) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runTerminate(t, s.c, s.cfg, s.known, args...)
}

func (s *leaverStack) state(t *testing.T, id string) workflows.OffboardingState {
	t.Helper()
	v, err := s.c.QueryWorkflow(context.Background(), workflows.OffboardingID(id), "", workflows.QueryState)
	require.NoError(t, err)
	var st workflows.OffboardingState
	require.NoError(t, v.Get(&st))
	return st
}

func TestTerminateUnknownEmployeeIsAnError(t *testing.T) {
	s := newLeaverStack(t)
	id := "E899999"
	_, err := s.run(t, id)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown employee "+id)

	_, err = runTerminate(t, s.c, s.cfg, func(string) (bool, error) { return false, errors.New("connection refused") }, id)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot tell whether "+id+" is known")
	_, err = s.c.DescribeWorkflow(context.Background(), workflows.OffboardingID(id), "")
	require.Error(t, err, "nothing was started")
}

func TestTerminateScheduleRescheduleRetract(t *testing.T) {
	s := newLeaverStack(t)
	id := s.newEmployee(t)
	wfID := workflows.OffboardingID(id)

	out, err := s.run(t, id, "--effective", "2999-12-30", "--reason", "end of contract")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Started offboarding of "+id)
	assert.Contains(t, out, "access ends: 2999-12-31T00:00:00Z (end of the last day 2999-12-30)")
	require.Eventually(t, func() bool { return s.state(t, id).State == workflows.StateScheduled }, 10*time.Second, 100*time.Millisecond)

	out, err = s.run(t, id, "--effective", "2999-06-30")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Rescheduled the offboarding of "+id+": last day 2999-06-30")
	require.Eventually(t, func() bool { return s.state(t, id).LastDay == "2999-06-30" }, 10*time.Second, 100*time.Millisecond)
	assert.Equal(t, time.Date(2999, 7, 1, 0, 0, 0, 0, time.UTC), s.state(t, id).AccessEndsAt.UTC())

	out, err = s.run(t, id, "--retract")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Retracted the offboarding of "+id+": nothing was changed")
	desc, err := s.c.DescribeWorkflow(context.Background(), wfID, "")
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, desc.Status)

	_, err = s.run(t, id, "--retract")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already finished (canceled, retracted): nothing to retract")

	// A retracted offboarding does not block a real one later.
	out, err = s.run(t, id, "--wait")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Started offboarding of "+id)
	assert.Contains(t, out, "no account anywhere: nothing to do")
	out, err = s.run(t, id)
	require.NoError(t, err, out)
	assert.Contains(t, out, "already done (completed, completed)")
}

// A termination without a day while one is scheduled (a contractor let go
// before the contract ends) moves the offboarding to now.
func TestTerminateNowMovesAScheduledOffboarding(t *testing.T) {
	s := newLeaverStack(t)
	id := s.newEmployee(t)
	out, err := s.run(t, id, "--effective", "2999-12-30")
	require.NoError(t, err, out)
	require.Eventually(t, func() bool { return s.state(t, id).State == workflows.StateScheduled }, 10*time.Second, 100*time.Millisecond)

	out, err = s.run(t, id)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Moved the scheduled offboarding of "+id+" to now: access ends now.")
	require.Eventually(t, func() bool {
		desc, err := s.c.DescribeWorkflow(context.Background(), workflows.OffboardingID(id), "")
		return err == nil && desc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}, 20*time.Second, 100*time.Millisecond, "the kill switch ran at once instead of in 2999")
}

func TestTerminateKillSwitchThenRetractIsRefused(t *testing.T) {
	s := newLeaverStack(t)
	id := s.newEmployee(t)
	user := s.user[id]
	s.app.mu.Lock()
	s.app.accounts[user] = &connectors.Account{Username: user, EmployeeID: id, Entitlements: []string{"staff", "vpn"}}
	s.app.mu.Unlock()

	out, err := s.run(t, id, "--wait", "--reason", "resigned")
	require.NoError(t, err, out)
	assert.Contains(t, out, "access ends: now")
	assert.Contains(t, out, "Access removed for "+id+" ("+user+")")
	assert.Regexp(t, `mem +disabled \(verified by read-back\), 2 session\(s\) ended; revoked staff, vpn; deleted after \d{4}-\d\d-\d\d`, out)
	acct, err := s.app.GetAccount(context.Background(), connectors.AccountRequest{Username: user})
	require.NoError(t, err)
	assert.True(t, acct.Disabled)
	assert.Empty(t, acct.Entitlements)
	assert.Equal(t, workflows.StateRetention, s.state(t, id).State)

	_, err = s.run(t, id, "--retract")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing to retract the offboarding of "+id+": its kill switch already ran (state retention)")
	_, err = s.run(t, id, "--effective", "2999-01-01")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has already removed access (state retention)")
	out, err = s.run(t, id)
	require.NoError(t, err, out)
	assert.Contains(t, out, "already in progress (retention)")
	assert.Equal(t, workflows.StateRetention, s.state(t, id).State, "nothing changed the run")
}
