package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/internal/app"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/internal/tclient"
)

// repoRoot is the module root, found from this file's location.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// testConfig is the environment's config with a task queue of its own, so a
// worker started by `make run` never takes this test's tasks.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg, err := config.FromEnv()
	require.NoError(t, err)
	cfg.TaskQueue = fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	cfg.PolicyFile = filepath.Join(repoRoot(t), config.DefaultPolicyFile)
	cfg.RosterFile = filepath.Join(repoRoot(t), config.DefaultRosterFile)
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

// startWorker runs the production worker wiring for the length of the test.
// The stack must be up: a missing server fails the test, it never skips.
func startWorker(t *testing.T, cfg config.Config) (client.Client, *app.Deps) {
	t.Helper()
	return startWorkerWith(t, cfg, nil)
}

// startWorkerWith is startWorker with a hook that may change the worker's
// dependencies before it serves, e.g. point an application at a test
// server of its own.
func startWorkerWith(t *testing.T, cfg config.Config, mod func(*app.Deps)) (client.Client, *app.Deps) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	deps, err := app.NewDeps(ctx, cfg, logger)
	require.NoError(t, err, "the stack must be up: run `make stack`")
	if mod != nil {
		mod(deps)
	}
	c, err := tclient.Dial(ctx, cfg, logger)
	require.NoError(t, err, "the stack must be up: run `make stack`")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := app.ServeDeps(ctx, c, cfg, deps, logger); err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		c.Close()
		deps.Close()
	})
	return c, deps
}

// issuedIDs are the employee IDs newEmployeeID handed out in this test
// binary: two tests must never share one, even before either has
// reserved a username for it.
var issuedIDs sync.Map

// newEmployeeID returns an employee ID (E9xxxxx) that no test of this
// binary was given and that no earlier run left a username or a ledger
// entry for, so each test starts fresh workflows. A random pick alone
// collides: a run hands out a few hundred of the 100,000.
func newEmployeeID(t *testing.T) string {
	t.Helper()
	cfg, err := config.FromEnv()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// store.Open applies the migrations: on a fresh machine this may run
	// before any worker has created the tables.
	conn, err := store.Open(ctx, cfg.StoreURL)
	require.NoError(t, err, "the stack must be up: run `make stack`")
	defer conn.Close()
	for {
		n, err := rand.Int(rand.Reader, big.NewInt(100000))
		require.NoError(t, err)
		id := fmt.Sprintf("E9%05d", n.Int64())
		if _, taken := issuedIDs.LoadOrStore(id, true); taken {
			continue
		}
		var used bool
		require.NoError(t, conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM usernames WHERE employee_id = $1)
			OR EXISTS (SELECT 1 FROM access_ledger WHERE employee_id = $1)`, id).Scan(&used))
		if !used {
			return id
		}
	}
}

// buildStarter builds the CLI once per test binary.
func buildStarter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "starter")
	cmd := exec.Command("go", "build", "-o", bin, "./starter")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build starter: %s", out)
	return bin
}

// runCLI runs the starter binary with the test's config in its environment.
func runCLI(t *testing.T, bin string, cfg config.Config, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(),
		"PROVISIO_TASK_QUEUE="+cfg.TaskQueue,
		"PROVISIO_POLICY="+cfg.PolicyFile,
		"PROVISIO_ROSTER="+cfg.RosterFile,
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// newTestPerson is an active engineer in Berlin who started yesterday, with
// a family name and e-mail made unique by the employee ID; tests change the
// fields they care about.
func newTestPerson(employee, given, familyBase string) hr.Person {
	id := strings.ToLower(employee)
	return hr.Person{
		EmployeeID: employee, GivenName: given, FamilyName: familyBase + id[1:],
		Email: id + "@example.com", Department: "Engineering", Title: "Software Engineer",
		Location: "Berlin", EmploymentType: hr.TypeEmployee, Status: hr.StatusActive,
		StartDate: hr.Date{Time: time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)},
	}
}

// writePerson writes p as a person file for `starter hire -f`.
func writePerson(t *testing.T, p hr.Person) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "person.json")
	data, err := json.Marshal(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, data, 0o600))
	return file
}
