package e2e

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/roster"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/workflows"
)

// syncPeople is how many people of the sample roster the sync test hires.
// Measured on the 2-core dev machine shared with other test runs: 40
// onboardings settle in about 30 s, 90 in about 65 s (some 0.7 s each), so
// the full 300 would take some 3.5 minutes and prove nothing more.
const syncPeople = 40

// syncSummary mirrors the JSON of `starter sync --output json` (the fields
// the test reads); unknown fields are ignored so the test pins only what it
// asserts.
type syncSummary struct {
	Source    string         `json:"source"`
	DryRun    bool           `json:"dryRun"`
	Rows      int            `json:"rows"`
	Started   map[string]int `json:"started"`
	Unchanged int            `json:"unchanged"`
	Recorded  int            `json:"recorded"`
	Events    []struct {
		Kind       string `json:"kind"`
		Type       string `json:"type"`
		EmployeeID string `json:"employeeId"`
		Line       int    `json:"line"`
		Outcome    string `json:"outcome"`
		WorkflowID string `json:"workflowId"`
	} `json:"events"`
	Notes []struct {
		EmployeeID string `json:"employeeId"`
		Note       string `json:"note"`
	} `json:"notes"`
	Rejected []struct {
		Line       int    `json:"line"`
		EmployeeID string `json:"employeeId"`
		Reason     string `json:"reason"`
	} `json:"rejected"`
	Failed []json.RawMessage `json:"failed"`
}

// syncFixture is the remapped sample subset of one test run.
type syncFixture struct {
	people []hr.Person
	// prefix makes the run's employee IDs (E<prefix>NN) and e-mails unique.
	prefix string
}

// TestRosterSyncEndToEnd syncs a slice of the sample roster (with IDs of
// its own) into a real worker, then a changed export (a mover, a leaver by
// status, a leaver by a removed row, a rename), then the same export
// again, and checks that the applications, the ledger and the synced state
// agree with each step.
func TestRosterSyncEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	pool, err := store.Open(ctx, cfg.StoreURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	fx := newSyncFixture(t, c)
	source := "e2e-" + fx.prefix + "-" + fmt.Sprint(time.Now().UnixNano()%1e6)
	sync := func(file string, extra ...string) (syncSummary, string, error) {
		t.Helper()
		args := append([]string{"sync", "--csv", file, "--source", source, "--output", "json"}, extra...)
		out, err := runCLI(t, bin, cfg, args...)
		// runCLI mixes stderr ("error: ...", client warnings) in: decode
		// the one JSON object stdout holds.
		var sum syncSummary
		i := strings.Index(out, "{\n")
		require.GreaterOrEqual(t, i, 0, "no JSON summary in:\n%s", out)
		require.NoError(t, json.NewDecoder(strings.NewReader(out[i:])).Decode(&sum), "sync output is not the JSON summary:\n%s", out)
		return sum, out, err
	}
	registerSyncCleanup(t, c, deps.Activities.Connectors, pool, fx, source)

	file1 := fx.write(t, fx.people)

	// A dry run lists every joiner and starts, stores nothing.
	dry, out, err := sync(file1, "--dry-run")
	require.NoError(t, err, out)
	assert.True(t, dry.DryRun)
	assert.Equal(t, len(fx.people), dry.Started["joiner"], out)
	assert.Len(t, dry.Events, len(fx.people))
	_, err = c.DescribeWorkflow(ctx, workflows.OnboardingID(fx.people[0].EmployeeID), "")
	var notFound *serviceerror.NotFound
	assert.True(t, errors.As(err, &notFound), "a dry run starts nothing: %v", err)
	state, err := roster.NewStore(pool).Load(ctx, source)
	require.NoError(t, err)
	assert.Empty(t, state, "a dry run writes no state")

	// The first sync hires everyone.
	start := time.Now()
	first, out, err := sync(file1)
	require.NoError(t, err, out)
	assert.Equal(t, map[string]int{"joiner": len(fx.people), "mover": 0, "leaver": 0, "contract-end": 0}, first.Started)
	assert.Empty(t, first.Rejected)
	assert.Empty(t, first.Failed)
	for _, e := range first.Events {
		assert.Equal(t, "started", e.Outcome, e.EmployeeID)
	}
	hired := waitOnboardings(t, ctx, c, fx.people)
	t.Logf("%d onboardings settled in %s", len(fx.people), time.Since(start).Round(time.Second))

	// Every settled joiner holds an enabled account in every planned
	// application, as the applications see it.
	for _, p := range fx.people {
		h := hired[p.EmployeeID]
		require.NotEmpty(t, h.Accounts, p.EmployeeID)
		for _, a := range h.Accounts {
			got, err := deps.Activities.Connectors[a.Application].GetAccount(ctx, connectors.AccountRequest{Username: h.Username})
			require.NoError(t, err, "%s in %s", p.EmployeeID, a.Application)
			assert.False(t, got.Disabled, "%s in %s", p.EmployeeID, a.Application)
			assert.Equal(t, p.EmployeeID, got.EmployeeID)
		}
	}

	// The changed export: a mover, a leaver by status, a leaver whose row
	// is gone, and a rename (recorded, no event). They are picked among
	// completed runs of people nobody in the slice reports to.
	picks := fx.pickCompleted(t, hired, 4)
	mover, leaver, gone, renamed := picks[0], picks[1], picks[2], picks[3]
	changed := slices.Clone(fx.people)
	var moved hr.Person
	changed = slices.DeleteFunc(changed, func(p hr.Person) bool { return p.EmployeeID == gone.EmployeeID })
	for i := range changed {
		switch changed[i].EmployeeID {
		case mover.EmployeeID:
			changed[i].Department, changed[i].Title = otherDepartment(changed[i].Department), "Specialist"
			moved = changed[i]
		case leaver.EmployeeID:
			changed[i].Status = hr.StatusTerm
		case renamed.EmployeeID:
			changed[i].FamilyName += "-Neu"
		}
	}
	file2 := fx.write(t, changed)
	second, out, err := sync(file2)
	require.NoError(t, err, out)
	assert.Equal(t, map[string]int{"joiner": 0, "mover": 1, "leaver": 2, "contract-end": 0}, second.Started, out)
	assert.Equal(t, len(changed)-3, second.Unchanged, out)
	assert.Equal(t, 1, second.Recorded, "the rename")
	require.Len(t, second.Notes, 1)
	assert.Equal(t, renamed.EmployeeID, second.Notes[0].EmployeeID)
	kinds := map[string]string{}
	var moverID string
	for _, e := range second.Events {
		kinds[e.EmployeeID] = e.Kind
		if e.Kind == "mover" {
			moverID = e.WorkflowID
		}
	}
	assert.Equal(t, map[string]string{mover.EmployeeID: "mover", leaver.EmployeeID: "leaver", gone.EmployeeID: "leaver"}, kinds)
	assert.Equal(t, workflows.MoverID(moved.EmployeeID, workflows.MoverChangeKey(moved)), moverID)

	// The same export again starts nothing.
	third, out, err := sync(file2)
	require.NoError(t, err, out)
	assert.Equal(t, map[string]int{"joiner": 0, "mover": 0, "leaver": 0, "contract-end": 0}, third.Started, out)
	assert.Equal(t, len(changed), third.Unchanged)
	assert.Empty(t, third.Events)

	// The mover finishes; the leavers reach their retention wait.
	var mres workflows.MoverResult
	require.NoError(t, waitRun(ctx, c, moverID, &mres), "mover of %s", mover.EmployeeID)
	for _, l := range []hr.Person{leaver, gone} {
		require.NoError(t, waitState(ctx, c, workflows.OffboardingID(l.EmployeeID), workflows.StateRetention), "offboarding of %s", l.EmployeeID)
	}

	// The applications agree.
	conns := deps.Activities.Connectors
	mh := hired[mover.EmployeeID]
	for _, g := range mres.Granted {
		acct, err := conns[g.Application].GetAccount(ctx, connectors.AccountRequest{Username: mh.Username})
		require.NoError(t, err)
		assert.Contains(t, acct.Entitlements, g.Entitlement, "the move granted %s", g)
	}
	for _, r := range mres.Revoked {
		acct, err := conns[r.Application].GetAccount(ctx, connectors.AccountRequest{Username: mh.Username})
		require.NoError(t, err)
		assert.NotContains(t, acct.Entitlements, r.Entitlement, "the move revoked %s", r)
	}
	assert.NotEmpty(t, append(mres.Granted, mres.Revoked...), "a department change changes access")
	for _, l := range []hr.Person{leaver, gone} {
		h := hired[l.EmployeeID]
		for _, a := range h.Accounts {
			acct, err := conns[a.Application].GetAccount(ctx, connectors.AccountRequest{Username: h.Username})
			require.NoError(t, err, "%s in %s: kept until retention ends", l.EmployeeID, a.Application)
			assert.True(t, acct.Disabled, "%s in %s", l.EmployeeID, a.Application)
			assert.Empty(t, acct.Entitlements, "%s in %s", l.EmployeeID, a.Application)
		}
	}
	rh := hired[renamed.EmployeeID]
	for _, a := range rh.Accounts {
		acct, err := conns[a.Application].GetAccount(ctx, connectors.AccountRequest{Username: rh.Username})
		require.NoError(t, err)
		assert.False(t, acct.Disabled, "a rename offboards nobody")
	}

	// The ledger agrees with the applications for the people who changed
	// and one who did not.
	led := ledger.New(pool)
	for _, p := range []hr.Person{mover, leaver, gone, renamed} {
		h := hired[p.EmployeeID]
		holdings, err := led.Holdings(ctx, p.EmployeeID)
		require.NoError(t, err)
		for _, a := range h.Accounts {
			acct, err := conns[a.Application].GetAccount(ctx, connectors.AccountRequest{Username: h.Username})
			require.NoError(t, err)
			state, ents := ledgerView(holdings, a.Application)
			wantState := ledger.StateEnabled
			if acct.Disabled {
				wantState = ledger.StateDisabled
			}
			assert.Equal(t, wantState, state, "ledger account of %s in %s", p.EmployeeID, a.Application)
			assert.ElementsMatch(t, acct.Entitlements, ents, "ledger entitlements of %s in %s", p.EmployeeID, a.Application)
		}
	}

	// The synced state says the same.
	state, err = roster.NewStore(pool).Load(ctx, source)
	require.NoError(t, err)
	require.Len(t, state, len(fx.people))
	assert.Equal(t, roster.StatusRemoved, state[gone.EmployeeID].Status)
	assert.Equal(t, roster.StatusTerminated, state[leaver.EmployeeID].Status)
	assert.Equal(t, moved.Department, state[mover.EmployeeID].Person.Department)
	assert.Equal(t, renamed.FamilyName+"-Neu", state[renamed.EmployeeID].Person.FamilyName)

	// Rejected rows: a new person with an unknown manager, and a known
	// person whose row broke. Both are listed with their lines, nothing
	// starts, and the broken row's person is no leaver.
	picked := map[string]bool{}
	for _, p := range picks {
		picked[p.EmployeeID] = true
	}
	bi := len(changed) - 1
	for picked[changed[bi].EmployeeID] {
		bi--
	}
	broken := changed[bi]
	lines := fx.csvLines(t, changed)
	// lines[0] is the header (line 1): data row bi is lines[bi+1], line bi+2.
	lines[bi+1] = strings.Replace(lines[bi+1], ","+broken.StartDate.String()+",", ",2026-02-30,", 1)
	stranger := fx.people[0]
	stranger.EmployeeID, stranger.ManagerID = "E"+fx.prefix+"99", "E"+fx.prefix+"98"
	stranger.Email = "stranger." + fx.prefix + "@example.com"
	lines = append(lines, fx.csvLines(t, []hr.Person{stranger})[1])
	file4 := filepath.Join(t.TempDir(), "roster-bad.csv")
	require.NoError(t, os.WriteFile(file4, []byte(strings.Join(lines, "")), 0o600))
	fourth, out, err := sync(file4)
	require.Error(t, err, "rejected rows fail the run: %s", out)
	assert.Contains(t, out, "2 rows rejected")
	require.Len(t, fourth.Rejected, 2, out)
	assert.Equal(t, bi+2, fourth.Rejected[0].Line)
	assert.Equal(t, broken.EmployeeID, fourth.Rejected[0].EmployeeID)
	assert.Contains(t, fourth.Rejected[0].Reason, "start_date")
	assert.Equal(t, len(changed)+2, fourth.Rejected[1].Line)
	assert.Contains(t, fourth.Rejected[1].Reason, "unknown manager E"+fx.prefix+"98")
	assert.Equal(t, map[string]int{"joiner": 0, "mover": 0, "leaver": 0, "contract-end": 0}, fourth.Started, "a broken row never makes a leaver")
	state, err = roster.NewStore(pool).Load(ctx, source)
	require.NoError(t, err)
	assert.Equal(t, roster.StatusActive, state[broken.EmployeeID].Status, "the broken row's person is kept as they were")
	assert.NotContains(t, state, stranger.EmployeeID)
	if broken.EmploymentType == hr.TypeEmployee {
		_, err = c.DescribeWorkflow(ctx, workflows.OffboardingID(broken.EmployeeID), "")
		assert.True(t, errors.As(err, &notFound), "no offboarding for %s: %v", broken.EmployeeID, err)
	}
}

// newSyncFixture takes syncPeople people of the sample roster, managers
// before their reports so every manager is in the slice, and gives them
// employee IDs and e-mails no earlier run used. Start dates are kept (all
// past); contractors' end dates move 90 days ahead so no contract has
// already ended; everyone is active.
func newSyncFixture(t *testing.T, c client.Client) syncFixture {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), config.DefaultRosterFile))
	require.NoError(t, err)
	rows, bad, err := hr.ReadRoster(strings.NewReader(string(data)))
	require.NoError(t, err)
	require.Empty(t, bad)
	byID := map[string]hr.Person{}
	for _, r := range rows {
		byID[r.Person.EmployeeID] = r.Person
	}
	var picked []hr.Person
	chosen := map[string]bool{}
	var add func(id string)
	add = func(id string) {
		p, ok := byID[id]
		if chosen[id] || !ok {
			return
		}
		if p.ManagerID != "" {
			add(p.ManagerID)
		}
		chosen[id] = true
		picked = append(picked, p)
	}
	for _, r := range rows {
		if len(picked) >= syncPeople {
			break
		}
		add(r.Person.EmployeeID)
	}
	require.Less(t, len(picked), 98, "IDs are E<prefix>NN; 98 and 99 are the test's strangers")

	prefix := freePrefix(t, c)
	ids := map[string]string{}
	for i, p := range picked {
		ids[p.EmployeeID] = fmt.Sprintf("E%s%02d", prefix, i)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for i := range picked {
		p := &picked[i]
		p.EmployeeID = ids[p.EmployeeID]
		if p.ManagerID != "" {
			p.ManagerID = ids[p.ManagerID]
		}
		local, domain, _ := strings.Cut(p.Email, "@")
		p.Email = local + "." + prefix + "@" + domain
		p.Status = hr.StatusActive
		if p.StartDate.After(today) {
			p.StartDate = hr.Date{Time: today.AddDate(0, 0, -1)}
		}
		if p.EmploymentType == hr.TypeContractor {
			p.EndDate = hr.Date{Time: today.AddDate(0, 0, 90)}
		} else {
			p.EndDate = hr.Date{}
		}
	}
	return syncFixture{people: picked, prefix: prefix}
}

// freePrefix picks a random 4-digit prefix (5000-8999: neither the sample's
// E1xxxxx nor newEmployeeID's E9xxxxx) whose first ID never ran.
func freePrefix(t *testing.T, c client.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 20 {
		n, err := rand.Int(rand.Reader, big.NewInt(4000))
		require.NoError(t, err)
		prefix := fmt.Sprint(5000 + n.Int64())
		_, err = c.DescribeWorkflow(ctx, workflows.OnboardingID("E"+prefix+"00"), "")
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return prefix
		}
	}
	t.Fatal("no unused employee ID prefix found in 20 tries")
	return ""
}

// csvLines renders people as roster lines, the header first, each ending
// in a newline.
func (fx syncFixture) csvLines(t *testing.T, people []hr.Person) []string {
	t.Helper()
	lines := make([]string, 0, len(people)+1)
	for _, rec := range append([][]string{hr.RosterHeader}, records(people)...) {
		var b strings.Builder
		w := csv.NewWriter(&b)
		require.NoError(t, w.Write(rec))
		w.Flush()
		require.NoError(t, w.Error())
		lines = append(lines, b.String())
	}
	return lines
}

func records(people []hr.Person) [][]string {
	out := make([][]string, len(people))
	for i, p := range people {
		out[i] = []string{p.EmployeeID, p.GivenName, p.FamilyName, p.Email, p.Department, p.Title,
			p.ManagerID, p.Location, p.EmploymentType, p.StartDate.String(), p.EndDate.String(), p.Status}
	}
	return out
}

// write writes people as a roster export and returns its path.
func (fx syncFixture) write(t *testing.T, people []hr.Person) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "roster.csv")
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(fx.csvLines(t, people), "")), 0o600))
	return file
}

// pickCompleted returns n employees (not contractors, whose contract end
// is already scheduled) whose onboarding completed, who manage nobody in
// the slice and who need no approval, from the end of the slice.
func (fx syncFixture) pickCompleted(t *testing.T, hired map[string]workflows.OnboardingState, n int) []hr.Person {
	t.Helper()
	managers := map[string]bool{}
	for _, p := range fx.people {
		managers[p.ManagerID] = true
	}
	var out []hr.Person
	for i := len(fx.people) - 1; i >= 0 && len(out) < n; i-- {
		p := fx.people[i]
		if managers[p.EmployeeID] || p.EmploymentType != hr.TypeEmployee || hired[p.EmployeeID].State != workflows.StateCompleted {
			continue
		}
		out = append(out, p)
	}
	require.Len(t, out, n, "not enough completed, non-manager employees in the slice")
	return out
}

func otherDepartment(d string) string {
	if d == "Sales" {
		return "Support"
	}
	return "Sales"
}

// waitOnboardings waits until every onboarding has provisioned its
// accounts: completed, or waiting for an approval nobody in the test gives
// (payments controllers). A failed or cancelled run fails the test.
func waitOnboardings(t *testing.T, ctx context.Context, c client.Client, people []hr.Person) map[string]workflows.OnboardingState {
	t.Helper()
	out := map[string]workflows.OnboardingState{}
	deadline := time.Now().Add(5 * time.Minute)
	for len(out) < len(people) {
		for _, p := range people {
			if _, done := out[p.EmployeeID]; done {
				continue
			}
			v, err := c.QueryWorkflow(ctx, workflows.OnboardingID(p.EmployeeID), "", workflows.QueryState)
			if err != nil {
				continue // not yet picked up
			}
			var st workflows.OnboardingState
			require.NoError(t, v.Get(&st))
			switch st.State {
			case workflows.StateCompleted, workflows.StateWaitingApproval:
				out[p.EmployeeID] = st
			case workflows.StateFailed, workflows.StateCancelled, workflows.StateCompensating:
				t.Fatalf("onboarding of %s (%s, %s) ended %s: %s", p.EmployeeID, p.Department, p.Title, st.State, st.Failure)
			}
		}
		if len(out) == len(people) {
			break
		}
		if time.Now().After(deadline) {
			var waiting []string
			for _, p := range people {
				if _, ok := out[p.EmployeeID]; !ok {
					waiting = append(waiting, p.EmployeeID)
				}
			}
			t.Fatalf("%d onboardings not settled after 5 minutes: %v", len(waiting), waiting)
		}
		time.Sleep(time.Second)
	}
	return out
}

// waitRun waits until the workflow exists and ends, and decodes its result.
func waitRun(ctx context.Context, c client.Client, id string, res any) error {
	for {
		err := c.GetWorkflow(ctx, id, "").Get(ctx, res)
		var notFound *serviceerror.NotFound
		if !errors.As(err, &notFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitState waits until the run's lifecycle state is want.
func waitState(ctx context.Context, c client.Client, id, want string) error {
	for {
		rs, err := describeRun(ctx, c, id)
		if err == nil && rs.state == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("state %q (want %q): %w", rs.state, want, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ledgerView is the ledger's account state and granted entitlements of
// one application.
func ledgerView(hs []ledger.Holding, app string) (state string, ents []string) {
	ents = []string{}
	for _, h := range hs {
		if h.Application != app {
			continue
		}
		if h.Entitlement == "" {
			state = h.State
		} else if h.State == ledger.StateGranted {
			ents = append(ents, h.Entitlement)
		}
	}
	sort.Strings(ents)
	return state, ents
}

// registerSyncCleanup ends every run the test's people have (onboardings
// waiting for approval, scheduled contract ends, retention waits), deletes
// their accounts and the feed's state.
func registerSyncCleanup(t *testing.T, c client.Client, conns map[string]connectors.Connector, pool *pgxpool.Pool, fx syncFixture, source string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, p := range fx.people {
			var st workflows.OnboardingState
			if v, err := c.QueryWorkflow(ctx, workflows.OnboardingID(p.EmployeeID), "", workflows.QueryState); err == nil {
				_ = v.Get(&st)
			}
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: "EmployeeId = '" + p.EmployeeID + "' AND ExecutionStatus = 'Running'",
			})
			if err == nil {
				for _, e := range resp.GetExecutions() {
					_ = c.TerminateWorkflow(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), "e2e cleanup")
				}
			}
			if st.Username != "" {
				for _, conn := range conns {
					_, _ = conn.DeleteAccount(ctx, connectors.AccountRequest{Username: st.Username})
				}
			}
		}
		if _, err := pool.Exec(ctx, `DELETE FROM roster_state WHERE source = $1`, source); err != nil {
			t.Logf("cleanup: roster state of %s: %v", source, err)
		}
	})
}
