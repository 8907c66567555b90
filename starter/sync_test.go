package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/roster"
	"github.com/provisio-dev/provisio/internal/storetest"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// memState is the roster state in memory, with failures on demand.
type memState struct {
	mu      sync.Mutex
	feeds   map[string]map[string]roster.State
	locked  map[string]bool
	saveErr map[string]error
	saves   int
}

func newMemState() *memState {
	return &memState{feeds: map[string]map[string]roster.State{}, locked: map[string]bool{}, saveErr: map[string]error{}}
}

func (m *memState) Lock(_ context.Context, source string) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.locked[source] {
		return nil, roster.ErrBusy
	}
	m.locked[source] = true
	return func() { m.mu.Lock(); delete(m.locked, source); m.mu.Unlock() }, nil
}

func (m *memState) Load(_ context.Context, source string) (map[string]roster.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]roster.State{}
	for k, v := range m.feeds[source] {
		out[k] = v
	}
	return out, nil
}

func (m *memState) Save(_ context.Context, source string, st roster.State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.saveErr[st.EmployeeID]; err != nil {
		return err
	}
	if m.feeds[source] == nil {
		m.feeds[source] = map[string]roster.State{}
	}
	m.feeds[source][st.EmployeeID] = st
	m.saves++
	return nil
}

func (m *memState) KnownAmong(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		if ok, _ := m.Known(ctx, id); ok {
			out[id] = true
		}
	}
	return out, nil
}

func (m *memState) Known(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.feeds {
		if _, ok := f[id]; ok {
			return true, nil
		}
	}
	return false, nil
}

// fakeStarter accepts every event except those of people in fail, and
// checks the people it is given, as events.Starter does for managers.
type fakeStarter struct {
	started []events.Event
	fail    map[string]error
	people  events.People
}

func (f *fakeStarter) Start(ctx context.Context, e events.Event) (events.Receipt, error) {
	if err := f.fail[e.Subject()]; err != nil {
		return events.Receipt{}, err
	}
	if e.Person != nil && e.Person.ManagerID != "" {
		if ok, err := f.people.Known(ctx, e.Person.ManagerID); err != nil || !ok {
			return events.Receipt{}, &events.InvalidError{Err: fmt.Errorf("manager_id: unknown %s", e.Person.ManagerID)}
		}
	}
	f.started = append(f.started, e)
	return events.Receipt{Type: e.Type, EmployeeID: e.Subject(), WorkflowID: string(e.Type) + "-" + e.Subject(),
		RunID: "run", Outcome: events.OutcomeStarted, URL: "http://ui/" + e.Subject()}, nil
}

// kinds renders started events as "type:ID", in order.
func (f *fakeStarter) kinds() []string {
	var out []string
	for _, e := range f.started {
		out = append(out, string(e.Type)+":"+e.Subject())
	}
	return out
}

type syncRun struct {
	state    *memState
	starter  *fakeStarter
	terminal bool
	// dialed counts how often the Temporal starter was built.
	dialed int
}

func newSyncRun() *syncRun {
	return &syncRun{state: newMemState(), starter: &fakeStarter{fail: map[string]error{}}}
}

// run executes `sync args...` against the fakes; it returns stdout and
// stderr apart, because --output json must be clean JSON on stdout.
func (r *syncRun) run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	opts := &rootOptions{out: &out, errOut: &errOut, cfg: config.Config{TaskQueue: "test"}}
	cmd := newSyncCmdWith(opts, &syncOptions{
		connect: func(context.Context, config.Config) (syncState, func(), error) { return r.state, func() {}, nil },
		starter: func(_ context.Context, _ *rootOptions, people events.People) (eventStarter, func(), error) {
			r.dialed++
			r.starter.people = people
			return r.starter, func() {}, nil
		},
		terminal: func(io.Writer) bool { return r.terminal },
	})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd.SetContext(ctx)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

const rosterHeader = "employee_id,given_name,family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status\n"

// row is a roster line; fields after the ID: manager, department, status, end date.
func row(id, manager, dept, status, end string) string {
	l := strings.ToLower(id)
	return fmt.Sprintf("%s,Given,Fam%s,%s@example.com,%s,Engineer,%s,Berlin,employee,2026-01-05,%s,%s\n", id, l, l, dept, manager, end, status)
}

func writeRoster(t *testing.T, rows ...string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "roster.csv")
	require.NoError(t, os.WriteFile(file, []byte(rosterHeader+strings.Join(rows, "")), 0o600))
	return file
}

func decodeSummary(t *testing.T, out string) syncSummary {
	t.Helper()
	var s syncSummary
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&s), "stdout must be the JSON summary alone:\n%s", out)
	return s
}

func TestSyncStartsTheChangesOnceAndOnlyOnce(t *testing.T) {
	r := newSyncRun()
	// The manager comes after their report: the export is known to the
	// starter as a whole.
	first := writeRoster(t,
		row("E100002", "E100001", "Engineering", "active", ""),
		row("E100001", "", "Exec", "active", ""),
		row("E100003", "E100001", "Sales", "terminated", "2026-03-31"),
		row("E100004", "E100001", "Sales", "active", ""),
	)
	out, _, err := r.run(t, "--csv", first)
	require.NoError(t, err, out)
	assert.Equal(t, []string{"hire:E100002", "hire:E100001", "hire:E100004"}, r.starter.kinds())
	assert.Contains(t, out, "3 joiner, 0 mover, 0 leaver, 0 contract-end")
	assert.Contains(t, out, "recorded without an event: 1")
	assert.Contains(t, out, "new row already terminated")
	assert.Len(t, r.state.feeds["hr"], 4, "every row's state is stored")
	assert.Equal(t, roster.StatusTerminated, r.state.feeds["hr"]["E100003"].Status)

	// The same file again: nothing, not even a Temporal connection.
	r.starter.started, r.dialed = nil, 0
	out, _, err = r.run(t, "--csv", first)
	require.NoError(t, err, out)
	assert.Empty(t, r.starter.started)
	assert.Zero(t, r.dialed)
	assert.Contains(t, out, "unchanged: 4")

	// A mover, a leaver by status, a leaver by a row gone.
	second := writeRoster(t,
		row("E100002", "E100001", "Finance", "active", ""),
		row("E100001", "", "Exec", "terminated", "2026-12-31"),
		row("E100003", "E100001", "Sales", "terminated", "2026-03-31"),
	)
	r.starter.started = nil
	out, _, err = r.run(t, "--csv", second)
	require.NoError(t, err, out)
	assert.Equal(t, []string{"move:E100002", "terminate:E100001", "terminate:E100004"}, r.starter.kinds())
	assert.Equal(t, "Finance", r.starter.started[0].Person.Department)
	assert.Equal(t, "2026-12-31", r.starter.started[1].Effective.String())
	assert.True(t, r.starter.started[2].Effective.IsZero(), "a row gone leaves now")
	assert.Equal(t, roster.StatusRemoved, r.state.feeds["hr"]["E100004"].Status)
	assert.Contains(t, out, "0 joiner, 1 mover, 2 leaver, 0 contract-end")
	assert.Contains(t, out, "department Engineering -> Finance")

	r.starter.started = nil
	_, _, err = r.run(t, "--csv", second)
	require.NoError(t, err)
	assert.Empty(t, r.starter.started, "syncing the same file twice starts nothing the second time")
}

func TestSyncFailurePartWayReEmitsOnlyTheRest(t *testing.T) {
	r := newSyncRun()
	file := writeRoster(t,
		row("E100001", "", "Exec", "active", ""),
		row("E100002", "E100001", "Sales", "active", ""),
		row("E100003", "E100001", "Sales", "active", ""),
	)
	r.starter.fail["E100002"] = errors.New("temporal: unavailable")
	out, _, err := r.run(t, "--csv", file, "--output", "json")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "1 event failed to start")
	sum := decodeSummary(t, out)
	require.Len(t, sum.Failed, 1)
	assert.Equal(t, syncEvent{Kind: roster.KindJoiner, Type: events.TypeHire, EmployeeID: "E100002", Line: 3,
		Why: "new in the export", Error: "temporal: unavailable"}, sum.Failed[0])
	assert.Equal(t, 2, sum.Started[roster.KindJoiner])
	assert.NotContains(t, r.state.feeds["hr"], "E100002", "a failed person's state is not stored")

	delete(r.starter.fail, "E100002")
	r.starter.started = nil
	_, _, err = r.run(t, "--csv", file)
	require.NoError(t, err)
	assert.Equal(t, []string{"hire:E100002"}, r.starter.kinds(), "only the rest")
}

func TestSyncStateNotSavedIsReported(t *testing.T) {
	r := newSyncRun()
	r.state.saveErr["E100001"] = errors.New("database gone")
	out, _, err := r.run(t, "--csv", writeRoster(t, row("E100001", "", "Exec", "active", "")), "--output", "json")
	require.Error(t, err)
	sum := decodeSummary(t, out)
	require.Len(t, sum.Failed, 1)
	assert.Contains(t, sum.Failed[0].Error, "state not saved")
	assert.Contains(t, sum.Failed[0].Error, "database gone")
	assert.Empty(t, sum.Failed[0].Kind, "the event itself was accepted")
	require.Len(t, sum.Events, 1)
	assert.Equal(t, events.OutcomeStarted, sum.Events[0].Outcome)
}

func TestSyncLeaverCapRefusesEverything(t *testing.T) {
	r := newSyncRun()
	var rows []string
	for i := range 30 {
		rows = append(rows, row(fmt.Sprintf("E1%05d", i), "", "Sales", "active", ""))
	}
	_, _, err := r.run(t, "--csv", writeRoster(t, rows...))
	require.NoError(t, err)
	saves := r.state.saves

	// A truncated export: 27 of 30 gone, and one new joiner.
	truncated := writeRoster(t, append(rows[:3:3], row("E200000", "", "Sales", "active", ""))...)
	r.starter.started = nil
	_, _, err = r.run(t, "--csv", truncated)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "27 leavers, more than --max-leavers 25")
	assert.Contains(t, err.Error(), "nothing started")
	assert.Empty(t, r.starter.started, "not even the joiner")
	assert.Equal(t, saves, r.state.saves, "no state written")

	out, _, err := r.run(t, "--csv", truncated, "--dry-run")
	require.Error(t, err, "a dry run says the sync would be refused")
	assert.Contains(t, out, "27 leaver")
	assert.Empty(t, r.starter.started)

	_, _, err = r.run(t, "--csv", truncated, "--max-leavers", "27")
	require.NoError(t, err, "raised on purpose")
	assert.Len(t, r.starter.started, 28)
}

func TestSyncDryRunStartsAndWritesNothing(t *testing.T) {
	r := newSyncRun()
	file := writeRoster(t, row("E100001", "", "Exec", "active", ""), row("E100002", "E100001", "Sales", "terminated", "2026-02-01"))
	out, _, err := r.run(t, "--csv", file, "--dry-run")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Dry run")
	assert.Contains(t, out, "would start: 1 joiner")
	assert.Regexp(t, `joiner\s+E100001\s+2\s+new in the export`, out)
	assert.Empty(t, r.starter.started)
	assert.Zero(t, r.dialed)
	assert.Zero(t, r.state.saves)

	out, _, err = r.run(t, "--csv", file, "--dry-run", "--output", "json")
	require.NoError(t, err)
	sum := decodeSummary(t, out)
	assert.True(t, sum.DryRun)
	assert.Equal(t, 1, sum.Recorded)
	require.Len(t, sum.Events, 1)
	assert.Equal(t, syncEvent{Kind: roster.KindJoiner, Type: events.TypeHire, EmployeeID: "E100001", Line: 2, Why: "new in the export"}, sum.Events[0])
}

func TestSyncRejectedRowsAreListedAndFailTheRun(t *testing.T) {
	r := newSyncRun()
	file := writeRoster(t,
		row("E100001", "", "Exec", "active", ""),
		row("E100002", "E999999", "Sales", "active", ""),
		"E100003,Bad,Date,bad@example.com,Sales,Clerk,,Berlin,employee,2026-99-01,,active\n",
		row("E100004", "E100005", "Sales", "active", ""),
		row("E100005", "E100004", "Sales", "active", ""),
		row("E100006", "E100001", "Sales", "active", ""),
	)
	out, _, err := r.run(t, "--csv", file, "--output", "json")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "4 rows rejected")
	sum := decodeSummary(t, out)
	var lines []int
	for _, rj := range sum.Rejected {
		lines = append(lines, rj.Line)
	}
	assert.Equal(t, []int{3, 4, 5, 6}, lines)
	assert.Contains(t, sum.Rejected[0].Reason, "unknown manager E999999")
	assert.Contains(t, sum.Rejected[1].Reason, "start_date")
	assert.Contains(t, sum.Rejected[2].Reason, "manager loop E100004 -> E100005 -> E100004")
	assert.Equal(t, []string{"hire:E100001", "hire:E100006"}, r.starter.kinds(), "bad rows never stop the others")
	assert.Equal(t, 6, sum.Rows)

	out, _, err = r.run(t, "--csv", file)
	require.Error(t, err)
	assert.Contains(t, out, "line 3 E100002: manager_id: unknown manager E999999")
	assert.Contains(t, out, "line 4 E100003: start_date")
}

func TestSyncRefusesBadInputBeforeAnything(t *testing.T) {
	good := writeRoster(t, row("E100001", "", "Exec", "active", ""))
	notRoster := filepath.Join(t.TempDir(), "x.csv")
	require.NoError(t, os.WriteFile(notRoster, []byte("name,mail\nAna,a@example.com\n"), 0o600))
	latin1 := filepath.Join(t.TempDir(), "latin1.csv")
	require.NoError(t, os.WriteFile(latin1, []byte(rosterHeader+"E100001,Jos\xe9,R,j@example.com,HR,C,,Berlin,employee,2026-01-01,,active\n"), 0o600))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no --csv", nil, `"csv" not set`},
		{"missing file", []string{"--csv", filepath.Join(t.TempDir(), "absent.csv")}, "--csv:"},
		{"wrong header", []string{"--csv", notRoster}, "rejected whole, nothing started: not an HR roster"},
		{"not UTF-8", []string{"--csv", latin1}, "not UTF-8"},
		{"bad output", []string{"--csv", good, "--output", "yaml"}, "--output"},
		{"negative cap", []string{"--csv", good, "--max-leavers", "-1"}, "--max-leavers"},
		{"bad source", []string{"--csv", good, "--source", "HR feed"}, "--source:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newSyncRun()
			_, _, err := r.run(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, r.starter.started)
			assert.Zero(t, r.state.saves)
		})
	}
}

func TestSyncSourcesAreApart(t *testing.T) {
	r := newSyncRun()
	file := writeRoster(t, row("E100001", "", "Exec", "active", ""))
	_, _, err := r.run(t, "--csv", file, "--source", "feed-a")
	require.NoError(t, err)
	_, _, err = r.run(t, "--csv", file, "--source", "feed-b")
	require.NoError(t, err)
	assert.Len(t, r.starter.started, 2, "each feed keeps its own state (the events layer dedups the hire)")

	// A manager known only from another feed is not unknown.
	_, _, err = r.run(t, "--csv", writeRoster(t, row("E100009", "E100001", "Sales", "active", "")), "--source", "feed-c")
	require.NoError(t, err)
}

func TestSyncBusyFeed(t *testing.T) {
	r := newSyncRun()
	release, err := r.state.Lock(context.Background(), "hr")
	require.NoError(t, err)
	defer release()
	_, _, err = r.run(t, "--csv", writeRoster(t, row("E100001", "", "Exec", "active", "")))
	require.Error(t, err)
	assert.True(t, errors.Is(err, roster.ErrBusy))
	assert.Empty(t, r.starter.started)
	_, _, err = r.run(t, "--csv", writeRoster(t, row("E100001", "", "Exec", "active", "")), "--dry-run")
	require.NoError(t, err, "a dry run reads without the lock")
}

func TestSyncJSONFieldsAreStable(t *testing.T) {
	r := newSyncRun()
	out, stderr, err := r.run(t, "--csv", writeRoster(t, row("E100001", "", "Exec", "active", "")), "--output", "json")
	require.NoError(t, err)
	assert.Empty(t, stderr)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"dryRun", "events", "failed", "file", "held", "notes", "recorded", "rejected", "rows", "source", "started", "unchanged"}, keys)
	assert.JSONEq(t, `{"joiner":1,"mover":0,"leaver":0,"contract-end":0}`, string(raw["started"]))
	assert.JSONEq(t, `[]`, string(raw["rejected"]), "empty lists are [], never null")
	var evs []map[string]any
	require.NoError(t, json.Unmarshal(raw["events"], &evs))
	require.Len(t, evs, 1)
	assert.Equal(t, map[string]any{"kind": "joiner", "type": "hire", "employeeId": "E100001", "line": float64(2),
		"why": "new in the export", "outcome": "started", "workflowId": "hire-E100001", "runId": "run", "url": "http://ui/E100001"}, evs[0])
}

func TestSyncProgressBarOnlyOnATerminal(t *testing.T) {
	var rows []string
	for i := range 5 {
		rows = append(rows, row(fmt.Sprintf("E1%05d", i), "", "Sales", "active", ""))
	}
	file := writeRoster(t, rows...)

	r := newSyncRun()
	out, stderr, err := r.run(t, "--csv", file)
	require.NoError(t, err)
	assert.Empty(t, stderr, "no bar in a pipe")
	assert.NotContains(t, out, "syncing")

	r = newSyncRun()
	r.terminal = true
	_, stderr, err = r.run(t, "--csv", file)
	require.NoError(t, err)
	assert.Contains(t, stderr, "syncing hr", "the bar draws on the terminal")

	r = newSyncRun()
	r.terminal = true
	out, stderr, err = r.run(t, "--csv", file, "--output", "json")
	require.NoError(t, err)
	assert.Empty(t, stderr, "no bar around JSON")
	decodeSummary(t, out)
}

// TestSyncWithThePostgreSQLState runs the command on the real roster store
// (a database of its own) with a fake starter: the state it writes makes
// the second sync of the same file start nothing.
func TestSyncWithThePostgreSQLState(t *testing.T) {
	url := storetest.Database(t, "synctest")
	starter := &fakeStarter{fail: map[string]error{}}
	runReal := func(args ...string) (string, error) {
		var out bytes.Buffer
		opts := &rootOptions{out: &out, errOut: &out, cfg: config.Config{StoreURL: url, TaskQueue: "test"}}
		cmd := newSyncCmdWith(opts, &syncOptions{
			connect: connectRosterStore,
			starter: func(_ context.Context, _ *rootOptions, people events.People) (eventStarter, func(), error) {
				starter.people = people
				return starter, func() {}, nil
			},
			terminal: func(io.Writer) bool { return false },
		})
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		cmd.SetArgs(args)
		cmd.SetContext(testenv.Context(t))
		err := cmd.Execute()
		return out.String(), err
	}
	file := writeRoster(t, row("E100001", "", "Exec", "active", ""), row("E100002", "E100001", "Sales", "active", ""))
	out, err := runReal("--csv", file)
	require.NoError(t, err, out)
	assert.Len(t, starter.started, 2)
	starter.started = nil
	out, err = runReal("--csv", file)
	require.NoError(t, err, out)
	assert.Empty(t, starter.started)
	assert.Contains(t, out, "unchanged: 2")

	out, err = runReal("--csv", writeRoster(t, row("E100001", "", "Exec", "active", "")))
	require.NoError(t, err, out)
	assert.Equal(t, []string{"terminate:E100002"}, starter.kinds())
}
