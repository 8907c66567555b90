package workflows_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/provisio-dev/provisio/internal/app"
)

// TestReplayRecordedHistories replays every history recorded from the real
// server (testdata/histories, written by the end-to-end tests with
// PROVISIO_RECORD_HISTORIES=1) against today's workflow code. A change that
// would break a running workflow fails here: guard it with
// workflow.GetVersion or give it a new workflow type.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/histories/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories: record them with `PROVISIO_RECORD_HISTORIES=1 make test`")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			app.RegisterWorkflows(r)
			logger := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(logger, f))
		})
	}
}
