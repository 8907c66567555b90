package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/workflows"
)

// runRetry runs `starter retry` against c (nil: the command must refuse
// before dialling); the command closes its client, the test's stays open.
func runRetry(t *testing.T, c client.Client, cfg config.Config, args ...string) (string, error) {
	t.Helper()
	if c != nil {
		c = keepOpen{c}
	}
	out, errOut, err := runCmd(t, cfg, c, newRetryCmd, args...)
	return out + errOut, err
}

// TestRetryIsRefusedWhenNothingWaits: only a running offboarding with a
// step waiting for its next try gets the signal; every other case says
// why and sends nothing. (The signal itself: the workflow tests, and the
// end-to-end TestVerifiedRevocation.)
func TestRetryIsRefusedWhenNothingWaits(t *testing.T) {
	_, err := runRetry(t, nil, config.Config{}, "E1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "employee ID must be E followed by 6 digits")

	s := newLeaverStack(t)
	id := s.newEmployee(t)
	_, err = runRetry(t, s.c, s.cfg, id)
	require.Error(t, err)
	assert.Contains(t, err.Error(), id+" has no offboarding (start one with `starter terminate "+id+"`)")

	user := s.user[id]
	s.app.mu.Lock()
	s.app.accounts[user] = &connectors.Account{Username: user, EmployeeID: id, Entitlements: []string{"staff"}}
	s.app.mu.Unlock()
	out, err := s.run(t, id, "--wait")
	require.NoError(t, err, out)
	require.Equal(t, workflows.StateRetention, s.state(t, id).State)
	out, err = runRetry(t, s.c, s.cfg, id)
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), "nothing in the offboarding of "+id+" waits to be tried again (state retention)")

	require.NoError(t, s.c.TerminateWorkflow(context.Background(), workflows.OffboardingID(id), "", "test"))
	_, err = runRetry(t, s.c, s.cfg, id)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the offboarding of "+id+" has ended (terminated): nothing to try again")
}
