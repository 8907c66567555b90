package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/tclient"
	"github.com/provisio-dev/provisio/workflows"
)

// runMove runs `move args...` with c as the Temporal client (nil: the
// command must refuse before dialing) and known answering the username
// store.
func runMove(t *testing.T, c client.Client, cfg config.Config, known func(string) bool, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	opts := &rootOptions{out: &out, errOut: &errOut, cfg: cfg,
		dial: func(context.Context, config.Config) (client.Client, error) {
			if c == nil {
				t.Fatal("the command must refuse its input before dialing")
			}
			return keepOpen{c}, nil
		}}
	cmd := newMoveCmdWith(opts, &moveOptions{person: hireOptions{people: staticPeople(func(id string) (bool, error) {
		return known != nil && known(id), nil
	})}})
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

func movePersonFile(t *testing.T, p hr.Person) string {
	t.Helper()
	data, err := json.Marshal(p)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "person.json")
	require.NoError(t, os.WriteFile(f, data, 0o600))
	return f
}

func mover(id string) hr.Person {
	return hr.Person{
		EmployeeID: id, GivenName: "Ada", FamilyName: "Lovelace", Email: "ada@example.com",
		Department: "Sales", Title: "Account Executive", Location: "Berlin", EmploymentType: hr.TypeEmployee,
		StartDate: hr.Date{Time: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)}, Status: hr.StatusActive,
	}
}

func TestMoveRefusesBadInputBeforeDialing(t *testing.T) {
	terminated := mover("E100001")
	terminated.Status = hr.StatusTerm
	noEmail := mover("E100001")
	noEmail.Email = ""
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing email", []string{"-f", movePersonFile(t, noEmail)}, "email"},
		{"bad employee ID", []string{"--employee-id", "x", "--given-name", "A", "--family-name", "B", "--email", "a@example.com",
			"--department", "Sales", "--title", "Rep", "--location", "Berlin"}, "employee_id"},
		{"terminated", []string{"-f", movePersonFile(t, terminated)}, "refusing to move"},
		{"roster without employee", []string{"--roster", "../deployments/demo/roster.csv"}, "--roster needs --employee-id"},
		{"not in roster", []string{"--roster", "../deployments/demo/roster.csv", "--employee-id", "E999997"}, "not in the roster"},
		{"arguments", []string{"E100001"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runMove(t, nil, config.Config{}, nil, tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestMoveOnTheServer runs the command against the real Temporal server.
// A worker runs the sequencer and the mover workflows but no activity: the
// mover waits for its first activity, so the started run only has to exist.
func TestMoveOnTheServer(t *testing.T) {
	cfg, err := config.FromEnv()
	require.NoError(t, err)
	cfg.TaskQueue = fmt.Sprintf("starter-move-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := tclient.Dial(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err, "Temporal must be up: run `make stack`")
	defer c.Close()
	w := worker.New(c, cfg.TaskQueue, worker.Options{})
	w.RegisterWorkflow(workflows.PersonEvents)
	w.RegisterWorkflow(workflows.Mover)
	require.NoError(t, w.Start())
	defer w.Stop()
	n, err := rand.Int(rand.Reader, big.NewInt(100000))
	require.NoError(t, err)
	id := fmt.Sprintf("E7%05d", n.Int64())
	p := mover(id)
	wfID := workflows.MoverID(id, workflows.MoverChangeKey(p))
	t.Cleanup(func() {
		_ = c.TerminateWorkflow(context.Background(), wfID, "", "test cleanup")
		_ = c.TerminateWorkflow(context.Background(), workflows.OffboardingID(id), "", "test cleanup")
		_ = c.TerminateWorkflow(context.Background(), workflows.PersonEventsID(id), "", "test cleanup")
	})
	file := movePersonFile(t, p)

	out, err := runMove(t, c, cfg, nil, "-f", file)
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), "employee_id: unknown employee "+id)
	assert.NotContains(t, out, "Started")

	known := func(string) bool { return true }
	out, err = runMove(t, c, cfg, known, "-f", file)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Started role change of "+id)
	assert.Contains(t, out, "workflow: "+wfID)
	assert.Contains(t, out, cfg.RunURL(wfID, ""))

	out, err = runMove(t, c, cfg, known, "-f", file)
	require.NoError(t, err, out)
	assert.Contains(t, out, "already in progress", "the same change again starts nothing")
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowId = '" + wfID + "'"})
	require.NoError(t, err)
	assert.LessOrEqual(t, len(resp.GetExecutions()), 1)

	// A leaver is not moved.
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.OffboardingID(id), TaskQueue: cfg.TaskQueue},
		workflows.Offboarding, workflows.OffboardingInput{EmployeeID: id})
	require.NoError(t, err)
	other := p
	other.Title = "Sales Engineer"
	out, err = runMove(t, c, cfg, known, "-f", movePersonFile(t, other))
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), "is being offboarded")
}
