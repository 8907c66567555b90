package workflows

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/policy"
)

const leaverID = "E100001"

// leaverWorld is what the mocked applications hold. Its hooks run on the
// test environment's activity goroutines, hence the lock.
type leaverWorld struct {
	mu       sync.Mutex
	username string
	// accounts are the applications' answers to FindAccounts, by name.
	accounts map[string]activities.FoundAccount
	// beforeFind, when set, may change the world before FindAccounts
	// call n (1-based) answers.
	beforeFind func(n int, w *leaverWorld)
	finds      int
	// onboarding answers AwaitWorkflowClosed, call n (1-based).
	onboarding func(n int) activities.AwaitWorkflowClosedResult
	awaits     int
}

func newWorld() *leaverWorld {
	return &leaverWorld{
		username: "jose.munoz",
		accounts: map[string]activities.FoundAccount{
			"ldap": {Application: "ldap", Exists: true, Entitlements: []string{"all-staff", "engineering"}, Retention: 90 * policy.Day},
			"postgres": {Application: "postgres", Exists: true, Entitlements: []string{"analytics_read"},
				Retention: 30 * policy.Day},
			"scim": {Application: "scim", Retention: 30 * policy.Day},
		},
	}
}

// leaverEnv is a test environment running Offboarding against a world.
type leaverEnv struct {
	*testsuite.TestWorkflowEnvironment
	rec *recorder
	// attention lists the NeedsAttention values upserted, in order.
	attention []bool
	// cancels counts the onboarding cancellations requested.
	cancels int
	// tempCancels counts CancelTemporaryAccess calls.
	tempCancels int
	// moverCancels counts CancelRoleChanges calls.
	moverCancels int
}

// newLeaverEnv mocks every activity the leaver uses; fail, when set,
// decides the error of a recorded call ("disable ldap", "revoke
// ldap/all-staff", "delete ldap").
func newLeaverEnv(t *testing.T, w *leaverWorld, fail func(call string) error) *leaverEnv {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := &leaverEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), rec: &recorder{}}
	env.SetStartTime(testStart)
	env.rec.now = env.Now
	env.RegisterWorkflow(Offboarding)
	env.RegisterActivity(&activities.Activities{})
	check := func(call string) error {
		if fail != nil {
			if err := fail(call); err != nil {
				return err
			}
		}
		env.rec.add(call)
		return nil
	}
	env.OnActivity(acts.FindAccounts, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FindAccountsInput) (activities.FindAccountsResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.finds++
			if w.beforeFind != nil {
				w.beforeFind(w.finds, w)
			}
			if in.EmployeeID != leaverID {
				return activities.FindAccountsResult{}, errors.New("wrong employee")
			}
			res := activities.FindAccountsResult{Username: w.username}
			if w.username == "" {
				return res, nil
			}
			for _, app := range []string{"ldap", "postgres", "scim"} {
				if len(in.Applications) == 0 || slices.Contains(in.Applications, app) {
					res.Applications = append(res.Applications, w.accounts[app])
				}
			}
			return res, nil
		}).Maybe()
	env.OnActivity(acts.AwaitWorkflowClosed, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AwaitWorkflowClosedInput) (activities.AwaitWorkflowClosedResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.awaits++
			if in.WorkflowID != OnboardingID(leaverID) {
				return activities.AwaitWorkflowClosedResult{}, errors.New("wrong workflow")
			}
			if w.onboarding == nil {
				return activities.AwaitWorkflowClosedResult{Closed: true}, nil
			}
			return w.onboarding(w.awaits), nil
		}).Maybe()
	env.OnActivity(acts.DisableAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AccountInput) (connectors.DisableResponse, error) {
			if in.Username != w.username {
				return connectors.DisableResponse{}, errors.New("wrong username")
			}
			return connectors.DisableResponse{Changed: true, SessionsEnded: 1}, cmp.Or(env.rec.audit("disable "+in.App, in.Audit), check("disable "+in.App))
		}).Maybe()
	env.OnActivity(acts.RevokeEntitlement, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EntitlementInput) (connectors.EntitlementResponse, error) {
			return connectors.EntitlementResponse{Changed: true}, cmp.Or(env.rec.audit("revoke "+in.App+"/"+in.Entitlement, in.Audit), check("revoke "+in.App+"/"+in.Entitlement))
		}).Maybe()
	env.OnActivity(acts.DeleteAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AccountInput) (connectors.DeleteResponse, error) {
			return connectors.DeleteResponse{Deleted: true}, cmp.Or(env.rec.audit("delete "+in.App, in.Audit), check("delete "+in.App))
		}).Maybe()
	env.OnActivity(acts.CancelTemporaryAccess, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CancelTemporaryAccessInput) (activities.CancelTemporaryAccessResult, error) {
			if in.EmployeeID != leaverID {
				return activities.CancelTemporaryAccessResult{}, errors.New("wrong employee")
			}
			env.tempCancels++
			return activities.CancelTemporaryAccessResult{WorkflowIDs: []string{TemporaryAccessID(leaverID, "postgres", "prod_admin")}}, nil
		}).Maybe()
	env.OnActivity(acts.CancelRoleChanges, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CancelRoleChangesInput) (activities.CancelRoleChangesResult, error) {
			if in.EmployeeID != leaverID {
				return activities.CancelRoleChangesResult{}, errors.New("wrong employee")
			}
			env.moverCancels++
			return activities.CancelRoleChangesResult{WorkflowIDs: []string{MoverID(leaverID, "0123456789ab")}}, nil
		}).Maybe()
	env.OnRequestCancelExternalWorkflow(mock.Anything, OnboardingID(leaverID), "").Return(nil).Run(
		func(mock.Arguments) { env.cancels++ }).Maybe()
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetBool(AttrNeedsAttention); ok {
			env.attention = append(env.attention, v)
		}
	}).Return().Maybe()
	return env
}

func (e *leaverEnv) state(t *testing.T) OffboardingState {
	t.Helper()
	v, err := e.QueryWorkflow(QueryState)
	require.NoError(t, err)
	var st OffboardingState
	require.NoError(t, v.Get(&st))
	return st
}

func (e *leaverEnv) result(t *testing.T) OffboardingResult {
	t.Helper()
	require.True(t, e.IsWorkflowCompleted())
	require.NoError(t, e.GetWorkflowError())
	var res OffboardingResult
	require.NoError(t, e.GetWorkflowResult(&res))
	return res
}

// positions maps each recorded call to its index.
func positions(calls []string) map[string]int {
	pos := map[string]int{}
	for i, c := range calls {
		pos[c] = i
	}
	return pos
}

func countOf(calls []string, call string) int {
	n := 0
	for _, c := range calls {
		if c == call {
			n++
		}
	}
	return n
}

func date(s string) hr.Date {
	d, err := hr.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestOffboardingKillSwitchDisablesThenRevokesThenDeletes(t *testing.T) {
	w := newWorld()
	env := newLeaverEnv(t, w, nil)
	// While the retention runs, access is gone and the run says so.
	env.RegisterDelayedCallback(func() {
		st := env.state(t)
		require.Equal(t, StateRetention, st.State)
		require.Len(t, st.Accounts, 2)
		for _, a := range st.Accounts {
			require.True(t, a.Disabled, a.Application)
			require.False(t, a.Deleted, a.Application)
		}
	}, 10*policy.Day)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID, Reason: "resigned"})

	res := env.result(t)
	require.Equal(t, 1, env.cancels, "a running onboarding is cancelled first")
	require.Equal(t, 1, env.tempCancels, "temporary grants end with the person")
	require.Equal(t, 1, env.moverCancels, "role changes in flight end with the person")
	calls := env.rec.list()
	require.ElementsMatch(t, []string{
		"disable ldap", "disable postgres",
		"revoke ldap/all-staff", "revoke ldap/engineering", "revoke postgres/analytics_read",
		"delete ldap", "delete postgres",
	}, calls)
	pos := positions(calls)
	for _, d := range []string{"disable ldap", "disable postgres"} {
		for _, r := range []string{"revoke ldap/all-staff", "revoke ldap/engineering", "revoke postgres/analytics_read"} {
			require.Less(t, pos[d], pos[r], "every disable comes before any revoke")
			for _, del := range []string{"delete ldap", "delete postgres"} {
				require.Less(t, pos[r], pos[del], "every revoke comes before any delete")
			}
		}
	}
	require.Equal(t, testStart, env.rec.at["disable ldap"], "the kill switch acts at once")
	require.Equal(t, testStart, env.rec.at["disable postgres"])
	require.Equal(t, 1, w.finds, "no onboarding ran: one sweep is enough")

	require.Equal(t, leaverID, res.EmployeeID)
	require.Equal(t, "jose.munoz", res.Username)
	require.Equal(t, "resigned", res.Reason)
	require.Equal(t, testStart, res.AccessEndedAt)
	require.Equal(t, []LeaverAccount{
		{Application: "ldap", Disabled: true, SessionsEnded: 1, Revoked: []string{"all-staff", "engineering"},
			DeleteAfter: testStart.Add(90 * policy.Day), Deleted: true, DeletedAt: testStart.Add(90 * policy.Day), Verified: ledger.VerifiedReadBack},
		{Application: "postgres", Disabled: true, SessionsEnded: 1, Revoked: []string{"analytics_read"},
			DeleteAfter: testStart.Add(30 * policy.Day), Deleted: true, DeletedAt: testStart.Add(30 * policy.Day), Verified: ledger.VerifiedReadBack},
	}, res.Accounts)
	require.Equal(t, StateCompleted, env.state(t).State)
	require.Empty(t, env.attention, "nothing went wrong, nothing was flagged")
}

func TestOffboardingDeletesExactlyWhenEachRetentionEnds(t *testing.T) {
	cases := []struct {
		name      string
		retention map[string]time.Duration
	}{
		{"per-application retention", map[string]time.Duration{"ldap": 90 * policy.Day, "postgres": 30 * policy.Day}},
		{"same retention", map[string]time.Duration{"ldap": 30 * policy.Day, "postgres": 30 * policy.Day}},
		{"no retention", map[string]time.Duration{"ldap": 0, "postgres": 7 * policy.Day}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			for app, d := range tc.retention {
				a := w.accounts[app]
				a.Retention = d
				w.accounts[app] = a
			}
			env := newLeaverEnv(t, w, nil)
			env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})
			env.result(t)
			for app, d := range tc.retention {
				require.Equal(t, testStart.Add(d), env.rec.at["delete "+app], app)
			}
			require.Equal(t, testStart.Add(max(tc.retention["ldap"], tc.retention["postgres"])), env.Now().UTC(),
				"the run ends with the last deletion")
		})
	}
}

func TestOffboardingScheduledLastDay(t *testing.T) {
	cases := []struct {
		name    string
		lastDay hr.Date
		want    time.Time
	}{
		{"no last day: now", hr.Date{}, testStart},
		{"last day already over: now", date("2026-11-24"), testStart},
		{"last day today: when it ends", date("2026-11-25"), time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
		{"future last day: when it ends", date("2027-01-29"), time.Date(2027, 1, 30, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			env := newLeaverEnv(t, w, nil)
			if tc.want.After(testStart) {
				env.RegisterDelayedCallback(func() {
					st := env.state(t)
					require.Equal(t, StateScheduled, st.State)
					require.Equal(t, tc.lastDay.String(), st.LastDay)
					require.Equal(t, tc.want, st.AccessEndsAt.UTC())
					require.Empty(t, env.rec.list(), "nothing is touched before the day ends")
					require.Zero(t, env.cancels)
				}, tc.want.Sub(testStart)-time.Minute)
			}
			env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID, LastDay: tc.lastDay})
			res := env.result(t)
			require.Equal(t, tc.want, env.rec.at["disable ldap"])
			require.Equal(t, tc.want, env.rec.at["disable postgres"])
			require.Equal(t, tc.want, res.AccessEndedAt.UTC())
			require.Equal(t, tc.want.Add(90*policy.Day), env.rec.at["delete ldap"], "retention counts from the end of access")
		})
	}
}

func TestOffboardingReschedule(t *testing.T) {
	lastDay := date("2026-12-31")
	cases := []struct {
		name    string
		newDay  hr.Date
		want    time.Time
		signals int
	}{
		{"earlier", date("2026-12-04"), time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), 1},
		{"later", date("2027-02-26"), time.Date(2027, 2, 27, 0, 0, 0, 0, time.UTC), 1},
		{"a past day: now", date("2026-11-01"), testStart.Add(time.Hour), 1},
		{"no day: now", hr.Date{}, testStart.Add(time.Hour), 1},
		{"twice, the last one wins", date("2026-12-10"), time.Date(2026, 12, 11, 0, 0, 0, 0, time.UTC), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newLeaverEnv(t, newWorld(), nil)
			if tc.signals == 2 {
				env.RegisterDelayedCallback(func() {
					env.SignalWorkflow(SignalReschedule, RescheduleInput{LastDay: date("2026-12-01")})
				}, 30*time.Minute)
			}
			env.RegisterDelayedCallback(func() {
				env.SignalWorkflow(SignalReschedule, RescheduleInput{LastDay: tc.newDay})
			}, time.Hour)
			env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID, LastDay: lastDay})
			res := env.result(t)
			require.Equal(t, tc.want, env.rec.at["disable ldap"])
			require.Equal(t, tc.want, res.AccessEndedAt.UTC())
		})
	}
}

func TestOffboardingRetractedWhileScheduledChangesNothing(t *testing.T) {
	w := newWorld()
	env := newLeaverEnv(t, w, nil)
	env.RegisterDelayedCallback(env.CancelWorkflow, 24*time.Hour)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID, LastDay: date("2026-12-31")})

	require.True(t, env.IsWorkflowCompleted())
	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "got %v", env.GetWorkflowError())
	require.Empty(t, env.rec.list())
	require.Zero(t, w.finds, "not even read")
	require.Zero(t, env.cancels, "the onboarding is left alone")
	require.Zero(t, env.tempCancels, "a retracted leaver ends no temporary access")
	require.Zero(t, env.moverCancels, "nor any role change")
	st := env.state(t)
	require.Equal(t, StateRetracted, st.State)
	require.Contains(t, st.Failure, "nothing was changed")
	require.Equal(t, testStart.Add(24*time.Hour), env.Now().UTC(), "the run ends when retracted, not on the last day")
}

func TestOffboardingOutageNeedsAttentionUntilTheApplicationRecovers(t *testing.T) {
	w := newWorld()
	// scim cannot be read at first; postgres refuses the first 7 disables.
	w.accounts["scim"] = activities.FoundAccount{Application: "scim", Retention: 30 * policy.Day,
		Error: "scim GetAccount: Unavailable: connection refused", ErrorKind: string(connectors.KindUnavailable)}
	w.beforeFind = func(n int, w *leaverWorld) {
		if n == 3 {
			w.accounts["scim"] = activities.FoundAccount{Application: "scim", Exists: true,
				Entitlements: []string{"engineering"}, Retention: 30 * policy.Day}
		}
	}
	disables := 0
	env := newLeaverEnv(t, w, func(call string) error {
		if call == "disable postgres" {
			if disables++; disables <= 7 {
				return temporal.NewApplicationError("postgres DisableAccount: Unavailable: connection refused", string(connectors.KindUnavailable))
			}
		}
		return nil
	})
	env.RegisterDelayedCallback(func() {
		st := env.state(t)
		require.Equal(t, StateRetention, st.State, "the applications that answered went on to revoke")
		require.True(t, st.NeedsAttention)
		var apps []string
		for _, p := range st.Problems {
			apps = append(apps, p.Application+": "+p.Step)
			require.False(t, p.Permanent)
			require.Contains(t, p.Error, "Unavailable")
		}
		require.ElementsMatch(t, []string{"postgres: disable account", "scim: find account"}, apps)
		calls := env.rec.list()
		require.Contains(t, calls, "disable ldap", "one application's outage does not hold the others back")
		require.Contains(t, calls, "revoke ldap/all-staff", "nor their revokes")
		require.Contains(t, calls, "revoke postgres/analytics_read", "a disable still retrying does not keep the account's entitlements")
		require.NotContains(t, strings.Join(calls, ","), "scim", "scim's account is not known yet")
	}, 30*time.Second)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})

	res := env.result(t)
	require.Equal(t, []bool{true, false}, env.attention, "raised once, cleared once recovered")
	require.Equal(t, 8, disables)
	// Five attempts of the first activity, then the workflow's second try
	// (a new activity), which says it retries: an earlier try may have
	// disabled the account without recording it in the ledger.
	pg := env.rec.audits["disable postgres"]
	require.Len(t, pg, 8)
	for i, au := range pg {
		require.Equal(t, i >= 5, au.Retry, "attempt %d", i+1)
	}
	require.False(t, env.rec.audits["disable ldap"][0].Retry, "a first try is no retry")
	require.Equal(t, testStart, env.rec.at["disable ldap"])
	require.True(t, env.rec.at["disable postgres"].After(testStart.Add(time.Minute)), "retried after a durable pause")
	require.Contains(t, env.rec.list(), "disable scim")
	require.Contains(t, env.rec.list(), "revoke scim/engineering")
	require.Contains(t, env.rec.list(), "delete scim")
	pos := positions(env.rec.list())
	require.Less(t, pos["disable scim"], pos["revoke scim/engineering"], "found late, scim still goes disable, revoke, delete")
	require.Less(t, pos["revoke scim/engineering"], pos["delete scim"])
	require.Equal(t, testStart.Add(30*policy.Day), env.rec.at["delete scim"], "after its retention, counted from the kill switch")
	require.Len(t, res.Accounts, 3)
	st := env.state(t)
	require.False(t, st.NeedsAttention)
	require.Empty(t, st.Problems)
	require.Equal(t, StateCompleted, st.State)
}

// TestOffboardingDisableIgnored runs a leaver whose LDAP directory
// accepts the disable and ignores it (the activity's read-back fails with
// NotVerified), under each disable_fallback of the policy.
func TestOffboardingDisableIgnored(t *testing.T) {
	ignored := temporal.NewApplicationError("ldap DisableAccount: not verified: account still reads as enabled", string(connectors.KindNotVerified))
	t.Run("delete removes the account at once instead", func(t *testing.T) {
		w := newWorld()
		ldapAcct := w.accounts["ldap"]
		ldapAcct.DisableFallback = activities.FallbackDelete
		w.accounts["ldap"] = ldapAcct
		disables := 0
		env := newLeaverEnv(t, w, func(call string) error {
			if call == "disable ldap" {
				disables++
				return ignored
			}
			return nil
		})
		env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID, Reason: "resigned"})
		res := env.result(t)

		calls := env.rec.list()
		assert.NotContains(t, calls, "revoke ldap/all-staff", "a deleted account has nothing left to revoke")
		assert.Equal(t, 1, countOf(calls, "delete ldap"))
		assert.Equal(t, 5, disables, "the disable had its quick retries (one try) before the fallback")
		assert.Less(t, env.rec.at["delete ldap"], testStart.Add(time.Minute), "deleted at once, not after the 90-day retention")
		au := env.rec.lastAudit(t, "delete ldap")
		assert.True(t, au.Fallback, "the ledger records the deletion as the fallback")
		assert.Contains(t, au.Note, "disable ignored")
		assert.Equal(t, testStart, au.RequestedAt, "requested when the disable was")

		ldapRes := res.Accounts[0]
		assert.Equal(t, "ldap", ldapRes.Application)
		assert.True(t, ldapRes.Deleted)
		assert.False(t, ldapRes.Disabled)
		assert.Equal(t, ledger.VerifiedFallbackDelete, ldapRes.Verified)
		assert.Contains(t, ldapRes.Fallback, "ignored the disable")
		assert.Equal(t, ledger.VerifiedReadBack, res.Accounts[1].Verified, "postgres went the normal way")
		assert.Empty(t, env.attention, "the fallback settled it in the first try: nothing to flag")
	})
	t.Run("flag keeps retrying with NeedsAttention until the disable holds", func(t *testing.T) {
		w := newWorld() // the built-in fallback is flag
		disables := 0
		env := newLeaverEnv(t, w, func(call string) error {
			if call == "disable ldap" {
				if disables++; disables <= 12 {
					return ignored
				}
			}
			return nil
		})
		var during OffboardingState
		env.RegisterDelayedCallback(func() { during = env.state(t) }, 2*time.Minute)
		env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})
		res := env.result(t)

		assert.True(t, during.NeedsAttention, "flagged while the disable is ignored")
		require.Len(t, during.Problems, 1)
		assert.Equal(t, "ldap", during.Problems[0].Application)
		assert.Equal(t, "disable account", during.Problems[0].Step)
		assert.Contains(t, during.Problems[0].Error, "not verified")
		assert.Equal(t, []bool{true, false}, env.attention, "raised, then cleared once verified")
		assert.Equal(t, 13, disables)
		assert.Equal(t, 1, countOf(env.rec.list(), "delete ldap"), "deleted once, after its retention")
		assert.Equal(t, testStart.Add(90*policy.Day), env.rec.at["delete ldap"], "the flag fallback never deletes early")
		assert.Equal(t, testStart, env.rec.lastAudit(t, "disable ldap").RequestedAt, "a retried step keeps its first request time")
		assert.Equal(t, ledger.VerifiedReadBack, res.Accounts[0].Verified)
		assert.True(t, res.Accounts[0].Disabled)
		assert.Empty(t, res.Accounts[0].Fallback)
	})
}

// TestOffboardingIgnoredDisableHoldsUpNothingElse: under the flag fallback
// an application that never applies the disable keeps its loop going, but
// every entitlement is still revoked at once and every account deleted
// when its retention ends, the ignoring application's included, which
// settles its loop.
func TestOffboardingIgnoredDisableHoldsUpNothingElse(t *testing.T) {
	w := newWorld()
	ldapAcct := w.accounts["ldap"]
	ldapAcct.Retention = 2 * policy.Day
	w.accounts["ldap"] = ldapAcct
	deleted, disables := false, 0
	var secondDay int // activity attempts on the second day
	var env *leaverEnv
	env = newLeaverEnv(t, w, func(call string) error {
		switch call {
		case "delete ldap":
			deleted = true
		case "disable ldap":
			disables++
			if at := env.Now().UTC(); at.After(testStart.Add(25*time.Hour)) && at.Before(testStart.Add(48*time.Hour)) {
				secondDay++
			}
			if !deleted {
				return temporal.NewApplicationError("ldap DisableAccount: not verified: account still reads as enabled", string(connectors.KindNotVerified))
			}
		}
		return nil
	})
	var during OffboardingState
	env.RegisterDelayedCallback(func() { during = env.state(t) }, time.Hour)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})
	res := env.result(t)

	assert.Equal(t, StateRetention, during.State)
	assert.True(t, during.NeedsAttention)
	for _, call := range []string{"revoke ldap/all-staff", "revoke ldap/engineering", "revoke postgres/analytics_read"} {
		assert.Less(t, env.rec.at[call], testStart.Add(time.Minute), "%s: at once, not after the ignored disable", call)
	}
	assert.Equal(t, testStart.Add(2*policy.Day), env.rec.at["delete ldap"], "the ignoring application's account is deleted when its retention ends")
	assert.Equal(t, testStart.Add(30*policy.Day), env.rec.at["delete postgres"])
	assert.NotContains(t, env.rec.list(), "disable ldap", "the disable never held")
	assert.Greater(t, disables, 100, "retried all along, every 10 minutes on the first day")
	assert.Positive(t, secondDay)
	assert.LessOrEqual(t, secondDay, 5*5, "after a day, every 6 hours (5 attempts a try): the history stays small")
	assert.Equal(t, []bool{true, false}, env.attention, "cleared once the deletion settled it")
	ldapRes := res.Accounts[0]
	assert.True(t, ldapRes.Deleted)
	assert.False(t, ldapRes.Disabled)
	assert.Equal(t, ledger.VerifiedReadBack, ldapRes.Verified, "the deletion was read back")
	assert.Equal(t, StateCompleted, env.state(t).State)
}

// TestOffboardingRetryNow: once an operator has fixed the application
// that ignored the disable, SignalRetryNow makes the waiting step try at
// once instead of at its next slot, six hours apart by then.
func TestOffboardingRetryNow(t *testing.T) {
	fixed := false
	env := newLeaverEnv(t, newWorld(), func(call string) error {
		if call == "disable ldap" && !fixed {
			return temporal.NewApplicationError("ldap DisableAccount: not verified: account still reads as enabled", string(connectors.KindNotVerified))
		}
		return nil
	})
	fixedAt := testStart.Add(31 * time.Hour)
	env.RegisterDelayedCallback(func() {
		fixed = true
		env.SignalWorkflow(SignalRetryNow, nil)
	}, fixedAt.Sub(testStart))
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})
	res := env.result(t)
	assert.Equal(t, fixedAt, env.rec.at["disable ldap"], "tried the moment it was asked")
	assert.Equal(t, []bool{true, false}, env.attention)
	assert.True(t, res.Accounts[0].Disabled)
	assert.Equal(t, ledger.VerifiedReadBack, res.Accounts[0].Verified)
}

// TestOffboardingAccountGoneAtTheDisable: an application that no longer has
// the account (the activity read that back and recorded it deleted) needs
// no revoke and no deletion.
func TestOffboardingAccountGoneAtTheDisable(t *testing.T) {
	env := newLeaverEnv(t, newWorld(), func(call string) error {
		if call == "disable postgres" {
			return temporal.NewNonRetryableApplicationError("postgres DisableAccount: NotFound: role gone", string(connectors.KindNotFound), nil)
		}
		return nil
	})
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})
	res := env.result(t)
	calls := env.rec.list()
	assert.NotContains(t, calls, "revoke postgres/analytics_read")
	assert.NotContains(t, calls, "delete postgres")
	require.Len(t, res.Accounts, 2)
	pg := res.Accounts[1]
	assert.Equal(t, "postgres", pg.Application)
	assert.True(t, pg.Deleted)
	assert.Equal(t, testStart, pg.DeletedAt)
	assert.Equal(t, ledger.VerifiedReadBack, pg.Verified)
	assert.Empty(t, env.attention)
}

func TestOffboardingWithNoAccountAnywhereHasNothingToDo(t *testing.T) {
	cases := []struct {
		name  string
		world func(w *leaverWorld)
	}{
		{"no username reserved", func(w *leaverWorld) { w.username = "" }},
		{"username but no accounts", func(w *leaverWorld) {
			for app, a := range w.accounts {
				w.accounts[app] = activities.FoundAccount{Application: app, Retention: a.Retention}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			tc.world(w)
			env := newLeaverEnv(t, w, nil)
			env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})
			res := env.result(t)
			require.Empty(t, res.Accounts)
			require.Empty(t, env.rec.list())
			require.Equal(t, testStart, env.Now().UTC(), "no retention to wait for")
			require.Equal(t, StateCompleted, env.state(t).State)
		})
	}
}

func TestOffboardingLeavesForeignAccountsAlone(t *testing.T) {
	w := newWorld()
	w.accounts["scim"] = activities.FoundAccount{Application: "scim", Foreign: true, Retention: 30 * policy.Day}
	env := newLeaverEnv(t, w, nil)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})
	res := env.result(t)
	for _, c := range env.rec.list() {
		require.NotContains(t, c, "scim")
	}
	require.Equal(t, []SkippedAccount{{Application: "scim",
		Reason: "an account with the username exists but was not created by provisio for this person"}}, res.Skipped)
}

// TestOffboardingWinsOverARunningOnboarding: the onboarding is cancelled,
// and once it has closed and settled a second sweep finds what it left: an
// account its last in-flight step created (scim), and none where its
// compensation deleted one (postgres).
func TestOffboardingWinsOverARunningOnboarding(t *testing.T) {
	w := newWorld()
	w.onboarding = func(n int) activities.AwaitWorkflowClosedResult {
		if n < 3 {
			return activities.AwaitWorkflowClosedResult{Found: true, Status: "running"}
		}
		return activities.AwaitWorkflowClosedResult{Found: true, Closed: true, Status: "canceled", CloseTime: testStart.Add(10 * time.Second)}
	}
	w.beforeFind = func(n int, w *leaverWorld) {
		if n == 2 {
			w.accounts["scim"] = activities.FoundAccount{Application: "scim", Exists: true,
				Entitlements: []string{"all-staff"}, Retention: 30 * policy.Day}
			w.accounts["postgres"] = activities.FoundAccount{Application: "postgres", Retention: 30 * policy.Day}
		}
	}
	env := newLeaverEnv(t, w, nil)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})
	res := env.result(t)

	require.Equal(t, 1, env.cancels)
	require.Equal(t, 3, w.awaits, "waits until the onboarding has closed")
	require.Equal(t, 2, w.finds, "a second sweep after the onboarding settled")
	settled := testStart.Add(10*time.Second + settleAfterOnboarding)
	calls := env.rec.list()
	// Disables run in parallel, so any of them may come first; what matters
	// is that one did before the onboarding had closed.
	require.True(t, strings.HasPrefix(calls[0], "disable "), "the kill switch did not wait for the onboarding: first call %q", calls[0])
	require.Equal(t, 2, countOf(calls, "disable ldap"), "disabled in both sweeps (idempotent)")
	require.Equal(t, 1, countOf(calls, "disable postgres"), "gone at the second sweep")
	require.Equal(t, settled, env.rec.at["disable scim"])
	pos := positions(env.rec.list())
	require.Less(t, pos["disable scim"], pos["revoke ldap/all-staff"], "revokes wait for the second sweep")
	require.Contains(t, env.rec.list(), "revoke scim/all-staff")
	require.NotContains(t, env.rec.list(), "revoke postgres/analytics_read", "already deleted by the onboarding")
	require.NotContains(t, env.rec.list(), "delete postgres")
	require.Equal(t, testStart.Add(30*policy.Day), env.rec.at["delete scim"],
		"retention counts from the kill switch, not from the second sweep")
	byApp := map[string]LeaverAccount{}
	for _, a := range res.Accounts {
		byApp[a.Application] = a
	}
	require.True(t, byApp["postgres"].Deleted)
	require.Equal(t, settled, byApp["postgres"].DeletedAt)
	require.True(t, byApp["scim"].Deleted)
}

// TestOffboardingSweepsAgainOnlyWhenTheOnboardingMayHaveActedSince covers
// the onboarding's possible endings relative to the kill switch.
func TestOffboardingSweepsAgainOnlyWhenTheOnboardingMayHaveActedSince(t *testing.T) {
	cases := []struct {
		name       string
		closed     activities.AwaitWorkflowClosedResult
		wantFinds  int
		wantRevoke time.Time
	}{
		{"never hired", activities.AwaitWorkflowClosedResult{Closed: true}, 1, testStart},
		{"completed long ago", activities.AwaitWorkflowClosedResult{Found: true, Closed: true, Status: "completed",
			CloseTime: testStart.Add(-time.Hour)}, 1, testStart},
		{"cancelled long ago", activities.AwaitWorkflowClosedResult{Found: true, Closed: true, Status: "canceled",
			CloseTime: testStart.Add(-time.Hour)}, 1, testStart},
		{"completed as the kill switch ran: sweep again at once", activities.AwaitWorkflowClosedResult{Found: true, Closed: true,
			Status: "completed", CloseTime: testStart}, 2, testStart},
		{"cancelled just before: sweep again once settled", activities.AwaitWorkflowClosedResult{Found: true, Closed: true,
			Status: "canceled", CloseTime: testStart.Add(-20 * time.Second)}, 2, testStart.Add(40 * time.Second)},
		{"failed just before: sweep again once settled", activities.AwaitWorkflowClosedResult{Found: true, Closed: true,
			Status: "failed", CloseTime: testStart.Add(-50 * time.Second)}, 2, testStart.Add(10 * time.Second)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.onboarding = func(int) activities.AwaitWorkflowClosedResult { return tc.closed }
			env := newLeaverEnv(t, w, nil)
			env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})
			env.result(t)
			require.Equal(t, tc.wantFinds, w.finds)
			require.Equal(t, tc.wantRevoke, env.rec.at["revoke ldap/all-staff"])
		})
	}
}

func TestOffboardingInvalidInputFailsOnlyAfterEverythingElse(t *testing.T) {
	w := newWorld()
	env := newLeaverEnv(t, w, func(call string) error {
		if call == "disable ldap" {
			return temporal.NewApplicationError("ldap DisableAccount: InvalidInput: bad username", string(connectors.KindInvalid))
		}
		return nil
	})
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})

	require.True(t, env.IsWorkflowCompleted())
	err := env.GetWorkflowError()
	require.Error(t, err)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae))
	require.Equal(t, "OffboardingFailed", ae.Type())
	require.Contains(t, ae.Error(), "ldap: disable account: ldap DisableAccount: InvalidInput: bad username")
	require.ElementsMatch(t, []string{"disable postgres", "revoke postgres/analytics_read", "delete postgres"}, env.rec.list(),
		"the other application is fully deprovisioned")
	require.Equal(t, []bool{true}, env.attention)
	st := env.state(t)
	require.Equal(t, StateFailed, st.State)
	require.True(t, st.NeedsAttention)
	require.Len(t, st.Problems, 1)
	require.True(t, st.Problems[0].Permanent)
}

func TestOffboardingCancelledDuringRetentionKeepsTheDisabledAccounts(t *testing.T) {
	w := newWorld()
	env := newLeaverEnv(t, w, nil)
	env.RegisterDelayedCallback(env.CancelWorkflow, 40*policy.Day)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})

	require.True(t, env.IsWorkflowCompleted())
	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "got %v", env.GetWorkflowError())
	require.Contains(t, env.rec.list(), "delete postgres", "its retention ended before the cancellation")
	require.NotContains(t, env.rec.list(), "delete ldap")
	st := env.state(t)
	require.Equal(t, StateCancelled, st.State)
	require.Contains(t, st.Failure, "accounts kept disabled, not deleted: ldap")
	for _, a := range st.Accounts {
		require.True(t, a.Disabled)
		require.Equal(t, a.Application == "ldap", a.Kept, a.Application)
	}
}

func TestOffboardingCancelledDuringTheKillSwitchStillRemovesAccess(t *testing.T) {
	w := newWorld()
	w.onboarding = func(n int) activities.AwaitWorkflowClosedResult {
		return activities.AwaitWorkflowClosedResult{Found: true, Closed: true, CloseTime: testStart}
	}
	env := newLeaverEnv(t, w, nil)
	// During the settling pause, before any revoke.
	env.RegisterDelayedCallback(env.CancelWorkflow, 30*time.Second)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})

	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "got %v", env.GetWorkflowError())
	require.ElementsMatch(t, []string{
		"disable ldap", "disable postgres", "disable ldap", "disable postgres",
		"revoke ldap/all-staff", "revoke ldap/engineering", "revoke postgres/analytics_read",
	}, env.rec.list(), "both sweeps and every revoke ran; no deletion")
}

func TestOffboardingRefusesAnInvalidEmployeeID(t *testing.T) {
	env := newLeaverEnv(t, newWorld(), nil)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: "x)(uid=*"})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "employee ID must be E followed by 6 digits")
	require.Empty(t, env.rec.list())
	require.Zero(t, env.cancels)
}
