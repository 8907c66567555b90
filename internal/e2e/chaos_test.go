package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/chaos/harness"
)

// testLog sends the harness's progress lines to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestChaos is the short version of `make chaos`: on private instances of
// PostgreSQL, slapd, the SCIM app and Temporal, 30 hires, 5 moves and 5
// terminations run while the worker is killed twice with SIGKILL, the
// Temporal server is restarted, slapd is stopped for 20 seconds and
// PostgreSQL refuses two hires for good. It then compares what the
// applications hold with what policy and the HR events say, and the
// ledger with the applications: any difference fails the test.
func TestChaos(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := harness.Options{RepoRoot: repoRoot(t), SharedPGURL: os.Getenv("PG_URL")}
	if testing.Verbose() {
		opts.Log = testLog{t}
	}
	report, err := harness.Run(ctx, opts, harness.Short())
	if report != nil {
		var b strings.Builder
		report.Print(&b)
		t.Log(b.String())
	}
	require.NoError(t, err, "the fault test could not run: the stack must be up (`make stack`)")

	// Every fault happened as planned.
	require.Len(t, report.Outages, 1, "one slapd outage")
	o := report.Outages[0]
	require.NotEmpty(t, o.Terminated, "leavers were terminated while slapd was down")
	require.NotEmpty(t, o.Flagged, "their offboardings were flagged NeedsAttention while slapd was down")
	require.Len(t, report.Compensated, 2, "two hires failed for good in PostgreSQL")
	for _, c := range report.Compensated {
		require.NotEmpty(t, c.Created, "%s got accounts in the other applications first", c.EmployeeID)
		require.Equal(t, c.Created, c.Removed, "compensation removed every account %s got", c.EmployeeID)
	}
	require.GreaterOrEqual(t, report.WorkerStarts, 3, "the worker was started again after each of the two kills")

	// Nothing is missing, extra or duplicated, the ledger agrees and every
	// run finished.
	require.Empty(t, report.Problems)
	require.Empty(t, report.Differences)
	require.True(t, report.OK())
	require.Equal(t, 30+2, report.Runs["onboarding completed"]+report.Runs["onboarding failed"])
	require.Equal(t, 2, report.Runs["onboarding failed"])
	require.Equal(t, 5, report.Runs["role change completed"])
	require.Equal(t, 5, report.Runs["offboarding running (retention)"]+report.Runs["offboarding completed"])
}
