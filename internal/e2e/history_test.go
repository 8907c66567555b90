package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// recordHistory writes the history of a finished run to
// workflows/testdata/histories/NAME.json when PROVISIO_RECORD_HISTORIES=1,
// so the replay test can prove later code still replays it. Recording is
// opt-in: a normal test run never rewrites the committed histories.
func recordHistory(t *testing.T, c client.Client, workflowID, runID, name string) {
	t.Helper()
	if os.Getenv("PROVISIO_RECORD_HISTORIES") != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hist := &historypb.History{}
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	data, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	path := filepath.Join(repoRoot(t), "workflows", "testdata", "histories", name+".json")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	t.Logf("recorded %s", path)
}
