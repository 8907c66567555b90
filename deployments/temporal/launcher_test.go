package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestLauncherRestartKeepsState runs the real server and UI in-process twice on the same
// database file and checks that the namespace, its search attributes and a started workflow
// survive the restart.
func TestLauncherRestartKeepsState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server; skipped with -short")
	}
	cfg := config{
		DBFile:       filepath.Join(t.TempDir(), "sub", "temporal.db"),
		IP:           "127.0.0.1",
		Port:         freePort(t),
		HistoryPort:  freePort(t),
		MatchingPort: freePort(t),
		WorkerPort:   freePort(t),
		UIPort:       freePort(t),
		Namespace:    "default",
		Retention:    30 * 24 * time.Hour,
		LogLevel:     "error",
	}
	require.NoError(t, cfg.validate())

	var namespaceID string
	startLauncher(t, cfg, func(wf workflowservice.WorkflowServiceClient, op operatorservice.OperatorServiceClient) {
		namespaceID = checkNamespace(t, wf, op, cfg)
		_, err := wf.StartWorkflowExecution(context.Background(), &workflowservice.StartWorkflowExecutionRequest{
			Namespace:    cfg.Namespace,
			WorkflowId:   "persisted-across-restart",
			WorkflowType: &commonpb.WorkflowType{Name: "NoWorkerNeeded"},
			TaskQueue:    &taskqueuepb.TaskQueue{Name: "nobody-polls"},
			RequestId:    "launcher-test",
		})
		require.NoError(t, err)

		resp, err := http.Get("http://" + cfg.dialHostPort(cfg.UIPort) + "/")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, strings.ToLower(string(body)), "<html")
	})

	// A changed retention on an existing database must be applied, not ignored.
	cfg.Retention = 48 * time.Hour
	startLauncher(t, cfg, func(wf workflowservice.WorkflowServiceClient, op operatorservice.OperatorServiceClient) {
		require.Equal(t, namespaceID, checkNamespace(t, wf, op, cfg), "namespace was recreated")
		desc, err := wf.DescribeWorkflowExecution(context.Background(), &workflowservice.DescribeWorkflowExecutionRequest{
			Namespace: cfg.Namespace,
			Execution: &commonpb.WorkflowExecution{WorkflowId: "persisted-across-restart"},
		})
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())

		// An attribute added to search_attributes.txt later reaches an existing namespace...
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		logger := log.NewNoopLogger()
		frontend := cfg.dialHostPort(cfg.Port)
		extra := map[string]enumspb.IndexedValueType{"ProvisioTestExtra": enumspb.INDEXED_VALUE_TYPE_INT}
		require.NoError(t, ensureNamespace(ctx, frontend, cfg.Namespace, cfg.Retention, extra, logger))
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			list, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: cfg.Namespace})
			require.NoError(c, err)
			require.Equal(c, enumspb.INDEXED_VALUE_TYPE_INT, list.GetCustomAttributes()["ProvisioTestExtra"])
		}, 30*time.Second, 200*time.Millisecond)

		// ...but a changed type is refused at once instead of being retried until the timeout.
		clash := map[string]enumspb.IndexedValueType{"EmployeeId": enumspb.INDEXED_VALUE_TYPE_BOOL}
		err = ensureNamespace(ctx, frontend, cfg.Namespace, cfg.Retention, clash, logger)
		require.ErrorContains(t, err, "EmployeeId is registered as Keyword, want Bool")
		require.NoError(t, ctx.Err())
	})
}

// startLauncher runs the launcher until check returns, then stops it and requires a clean exit.
func startLauncher(t *testing.T, cfg config, check func(workflowservice.WorkflowServiceClient, operatorservice.OperatorServiceClient)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: cfg.LogLevel}))
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logger) }()

	conn, err := grpc.NewClient(cfg.dialHostPort(cfg.Port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	wf := workflowservice.NewWorkflowServiceClient(conn)
	require.Eventually(t, func() bool {
		_, err := wf.GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{})
		return err == nil
	}, 90*time.Second, 200*time.Millisecond, "frontend never answered")

	check(wf, operatorservice.NewOperatorServiceClient(conn))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("launcher did not stop within 60s")
	}
}

// checkNamespace waits for the launcher's setup to finish, checks retention and search
// attributes, and returns the namespace ID.
func checkNamespace(t *testing.T, wf workflowservice.WorkflowServiceClient, op operatorservice.OperatorServiceClient, cfg config) string {
	t.Helper()
	want, err := parseSearchAttributes(searchAttributesFile)
	require.NoError(t, err)
	var id string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		desc, err := wf.DescribeNamespace(context.Background(), &workflowservice.DescribeNamespaceRequest{Namespace: cfg.Namespace})
		require.NoError(c, err)
		require.Equal(c, cfg.Retention, desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration())
		list, err := op.ListSearchAttributes(context.Background(), &operatorservice.ListSearchAttributesRequest{Namespace: cfg.Namespace})
		require.NoError(c, err)
		for name, typ := range want {
			require.Equal(c, typ, list.GetCustomAttributes()[name], name)
		}
		id = desc.GetNamespaceInfo().GetId()
	}, 30*time.Second, 200*time.Millisecond)
	return id
}

// freePort asks the kernel for a port that is free right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}
