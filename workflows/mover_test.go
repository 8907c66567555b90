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
)

// moverWorld is what the mocked Temporal server and applications answer.
type moverWorld struct {
	mu sync.Mutex
	// onboarding answers AwaitWorkflowClosed for the onboarding, call n.
	onboarding func(n int) activities.AwaitWorkflowClosedResult
	awaits     int
	// offboarding answers WorkflowStatus, call n.
	offboarding func(n int) activities.WorkflowStatusResult
	checks      int
	username    string
	accounts    []activities.FoundAccount
	temporary   []activities.GrantRef
	diff        activities.DiffAccessResult
	// diffIn is what DiffAccess was asked.
	diffIn activities.DiffAccessInput
}

func movedPerson() hr.Person {
	p := testPerson(testStart.AddDate(0, -6, 0))
	p.Department, p.Title = "Sales", "Account Executive"
	return p
}

func moverInput() MoverInput {
	p := movedPerson()
	return MoverInput{Person: p, ChangeKey: MoverChangeKey(p)}
}

// newMoverWorld: an engineer holding ldap and postgres access and a
// temporary ldap/vpn grant, moving to Sales.
func newMoverWorld() *moverWorld {
	return &moverWorld{
		username: "jose.munoz",
		accounts: []activities.FoundAccount{
			{Application: "ldap", Exists: true, Entitlements: []string{"all-staff", "engineering", "vpn"}},
			{Application: "postgres", Exists: true, Entitlements: []string{"analytics_read"}},
			{Application: "scim"},
		},
		temporary: []activities.GrantRef{{Application: "ldap", Entitlement: "vpn"}},
		diff: activities.DiffAccessResult{
			PolicyVersion: "v3",
			Grant: []activities.AppAccess{
				{Application: "ldap", Entitlements: []string{"sales"}},
				{Application: "scim", Entitlements: []string{"all-staff", "sales"}},
			},
			Revoke: []activities.AppAccess{
				{Application: "ldap", Entitlements: []string{"engineering"}},
				{Application: "postgres", Entitlements: []string{"analytics_read"}},
			},
			Keep:     []activities.GrantRef{{Application: "ldap", Entitlement: "all-staff"}},
			Expiring: []activities.GrantRef{{Application: "ldap", Entitlement: "vpn"}},
		},
	}
}

func newMoverEnv(t *testing.T, w *moverWorld, rec *recorder, fail func(call string) error) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(testStart)
	rec.now = env.Now
	env.RegisterWorkflow(Mover)
	env.RegisterActivity(&activities.Activities{})
	check := func(call string) error {
		if fail != nil {
			if err := fail(call); err != nil {
				return err
			}
		}
		rec.add(call)
		return nil
	}
	env.OnActivity(acts.AwaitWorkflowClosed, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AwaitWorkflowClosedInput) (activities.AwaitWorkflowClosedResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if in.WorkflowID != OnboardingID("E100001") {
				return activities.AwaitWorkflowClosedResult{}, errors.New("wrong workflow " + in.WorkflowID)
			}
			w.awaits++
			rec.add("await onboarding")
			if w.onboarding == nil {
				return activities.AwaitWorkflowClosedResult{Found: true, Closed: true, Status: "completed"}, nil
			}
			return w.onboarding(w.awaits), nil
		}).Maybe()
	env.OnActivity(acts.OpenRuns, mock.Anything, mock.Anything).Return(activities.OpenRunsResult{}, nil).Maybe()
	env.OnActivity(acts.WorkflowStatus, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.WorkflowStatusInput) (activities.WorkflowStatusResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.checks++
			rec.add("check offboarding")
			if w.offboarding == nil {
				return activities.WorkflowStatusResult{}, nil
			}
			return w.offboarding(w.checks), nil
		}).Maybe()
	env.OnActivity(acts.FindAccounts, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FindAccountsInput) (activities.FindAccountsResult, error) {
			rec.add("find accounts")
			if w.username == "" {
				return activities.FindAccountsResult{}, nil
			}
			return activities.FindAccountsResult{Username: w.username, Applications: w.accounts}, nil
		}).Maybe()
	env.OnActivity(acts.TemporaryGrants, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.TemporaryGrantsInput) (activities.TemporaryGrantsResult, error) {
			return activities.TemporaryGrantsResult{Grants: w.temporary}, nil
		}).Maybe()
	env.OnActivity(acts.DiffAccess, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DiffAccessInput) (activities.DiffAccessResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.diffIn = in
			return w.diff, nil
		}).Maybe()
	env.OnActivity(acts.ManagerOf, mock.Anything, mock.Anything).Return(activities.ManagerOfResult{Known: true}, nil).Maybe()
	env.OnActivity(acts.EnsureAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EnsureAccountInput) (connectors.EnsureAccountResponse, error) {
			created := !slices.ContainsFunc(w.accounts, func(f activities.FoundAccount) bool { return f.Application == in.App && f.Exists })
			return connectors.EnsureAccountResponse{Created: created, Updated: !created}, cmp.Or(rec.audit("ensure "+in.App, in.Audit), check("ensure "+in.App))
		}).Maybe()
	env.OnActivity(acts.GrantEntitlement, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EntitlementInput) (connectors.EntitlementResponse, error) {
			return connectors.EntitlementResponse{Changed: true}, cmp.Or(rec.audit("grant "+in.App+"/"+in.Entitlement, in.Audit), check("grant "+in.App+"/"+in.Entitlement))
		}).Maybe()
	env.OnActivity(acts.RevokeEntitlement, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EntitlementInput) (connectors.EntitlementResponse, error) {
			return connectors.EntitlementResponse{Changed: true}, cmp.Or(rec.audit("revoke "+in.App+"/"+in.Entitlement, in.Audit), check("revoke "+in.App+"/"+in.Entitlement))
		}).Maybe()
	env.OnActivity(acts.DeleteAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AccountInput) (connectors.DeleteResponse, error) {
			return connectors.DeleteResponse{Deleted: true}, cmp.Or(rec.audit("delete "+in.App, in.Audit), check("delete "+in.App))
		}).Maybe()
	return env
}

func moverResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) MoverResult {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res MoverResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return res
}

func refs(s ...string) []activities.GrantRef {
	out := make([]activities.GrantRef, len(s))
	for i, r := range s {
		app, ent, _ := strings.Cut(r, "/")
		out[i] = activities.GrantRef{Application: app, Entitlement: ent}
	}
	return out
}

func applicationType(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type()
	}
	return ""
}

func TestMoverGrantsTheNewRevokesTheOldAndKeepsTemporaryGrants(t *testing.T) {
	w, rec := newMoverWorld(), &recorder{}
	env := newMoverEnv(t, w, rec, nil)
	env.ExecuteWorkflow(Mover, moverInput())
	res := moverResult(t, env)

	assert.Equal(t, "jose.munoz", res.Username)
	assert.Equal(t, "v3", res.PolicyVersion)
	assert.Equal(t, refs("ldap/sales", "scim/all-staff", "scim/sales"), res.Granted)
	assert.Equal(t, refs("ldap/engineering", "postgres/analytics_read"), res.Revoked)
	assert.Equal(t, refs("ldap/vpn"), res.Kept, "the temporary grant stays until it expires")
	assert.Equal(t, []string{"scim"}, res.CreatedAccounts)
	assert.Equal(t, w.temporary, w.diffIn.Temporary, "the diff knows which grants are temporary")

	calls := rec.list()
	assert.NotContains(t, calls, "revoke ldap/vpn")
	assert.NotContains(t, calls, "delete postgres", "an account the new role gives nothing in is kept")
	for _, app := range []string{"ldap", "postgres", "scim"} {
		assert.Contains(t, calls, "ensure "+app, "every account's attributes are brought up to date")
	}
	pos := positions(calls)
	for _, g := range []string{"grant ldap/sales", "grant scim/all-staff", "grant scim/sales"} {
		for _, r := range []string{"revoke ldap/engineering", "revoke postgres/analytics_read"} {
			assert.Less(t, pos[g], pos[r], "new access first, then the old goes: %s before %s", g, r)
		}
	}
	assert.Less(t, pos["ensure scim"], pos["grant scim/all-staff"])
	assert.Equal(t, 2, countOf(calls, "check offboarding"), "before planning and again before revoking")
}

func TestMoverWaitsForTheOnboardingAndAppliesAfterIt(t *testing.T) {
	w, rec := newMoverWorld(), &recorder{}
	w.onboarding = func(n int) activities.AwaitWorkflowClosedResult {
		if n < 3 {
			return activities.AwaitWorkflowClosedResult{Found: true, Status: "running"}
		}
		return activities.AwaitWorkflowClosedResult{Found: true, Closed: true, Status: "completed"}
	}
	env := newMoverEnv(t, w, rec, nil)
	env.ExecuteWorkflow(Mover, moverInput())
	moverResult(t, env)
	calls := rec.list()
	assert.Equal(t, 3, countOf(calls, "await onboarding"))
	assert.Less(t, positions(calls)["await onboarding"], slices.Index(calls, "find accounts"),
		"what is held is read only once the onboarding has finished")
}

func TestMoverRefusesWhenTheOnboardingDidNotComplete(t *testing.T) {
	w, rec := newMoverWorld(), &recorder{}
	w.onboarding = func(int) activities.AwaitWorkflowClosedResult {
		return activities.AwaitWorkflowClosedResult{Found: true, Closed: true, Status: "canceled"}
	}
	env := newMoverEnv(t, w, rec, nil)
	env.ExecuteWorkflow(Mover, moverInput())
	err := env.GetWorkflowError()
	require.Error(t, err)
	assert.Equal(t, ErrMoverRefused, applicationType(err))
	assert.Contains(t, err.Error(), "ended canceled")
	assert.NotContains(t, rec.list(), "find accounts")
}

func TestMoverRefusesALeaver(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  activities.WorkflowStatusResult
	}{
		{"running", activities.WorkflowStatusResult{Found: true, Status: "running", State: StateScheduled}},
		{"completed", activities.WorkflowStatusResult{Found: true, Status: "completed", State: StateCompleted}},
		{"cancelled after the kill switch", activities.WorkflowStatusResult{Found: true, Status: "canceled", State: StateCancelled}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, rec := newMoverWorld(), &recorder{}
			w.offboarding = func(int) activities.WorkflowStatusResult { return tc.off }
			env := newMoverEnv(t, w, rec, nil)
			env.ExecuteWorkflow(Mover, moverInput())
			err := env.GetWorkflowError()
			require.Error(t, err)
			assert.Equal(t, ErrLeaverWins, applicationType(err))
			assert.Contains(t, err.Error(), "a leaver wins")
			for _, c := range rec.list() {
				assert.NotRegexp(t, "^(grant|revoke|ensure|delete) ", c, "nothing changes")
			}
		})
	}
	t.Run("retracted offboarding lets the move through", func(t *testing.T) {
		w, rec := newMoverWorld(), &recorder{}
		w.offboarding = func(int) activities.WorkflowStatusResult {
			return activities.WorkflowStatusResult{Found: true, Status: "canceled", State: StateRetracted}
		}
		env := newMoverEnv(t, w, rec, nil)
		env.ExecuteWorkflow(Mover, moverInput())
		moverResult(t, env)
	})
}

func TestMoverUndoesItsGrantsWhenAnOffboardingStartsMeanwhile(t *testing.T) {
	w, rec := newMoverWorld(), &recorder{}
	w.offboarding = func(n int) activities.WorkflowStatusResult {
		if n == 1 {
			return activities.WorkflowStatusResult{}
		}
		return activities.WorkflowStatusResult{Found: true, Status: "running", State: StateDisabling}
	}
	env := newMoverEnv(t, w, rec, nil)
	env.ExecuteWorkflow(Mover, moverInput())
	err := env.GetWorkflowError()
	require.Error(t, err)
	assert.Equal(t, ErrLeaverWins, applicationType(err))
	calls := rec.list()
	for _, c := range []string{"revoke ldap/sales", "revoke scim/sales", "revoke scim/all-staff", "delete scim"} {
		assert.Contains(t, calls, c, "what the move granted is taken back")
	}
	assert.NotContains(t, calls, "revoke ldap/engineering", "the leaver revokes the rest")
}

func TestMoverGrantFailureCompensatesOnlyItsOwnGrants(t *testing.T) {
	w, rec := newMoverWorld(), &recorder{}
	fail := func(call string) error {
		if call == "grant scim/sales" {
			return temporal.NewNonRetryableApplicationError("scim GrantEntitlement: no such group", string(connectors.KindNotFound), nil)
		}
		return nil
	}
	env := newMoverEnv(t, w, rec, fail)
	env.ExecuteWorkflow(Mover, moverInput())
	err := env.GetWorkflowError()
	require.Error(t, err)
	assert.Equal(t, ErrMoverFailed, applicationType(err))
	assert.Contains(t, err.Error(), "scim: grant sales")

	calls := rec.list()
	pos := positions(calls)
	assert.Contains(t, calls, "revoke ldap/sales")
	assert.Contains(t, calls, "revoke scim/all-staff")
	assert.Contains(t, calls, "delete scim", "the account this move created goes")
	assert.Less(t, pos["revoke scim/all-staff"], pos["delete scim"], "undone in reverse order")
	assert.NotContains(t, calls, "delete ldap", "an account the person had is never deleted")
	assert.NotContains(t, calls, "delete postgres")
	assert.NotContains(t, calls, "revoke ldap/engineering", "nothing old was revoked: the grants failed first")
	assert.NotContains(t, calls, "revoke ldap/all-staff", "held access is not touched by compensation")
}

func TestMoverAsksForApprovalAndGrantsOnceApproved(t *testing.T) {
	w, rec := newMoverWorld(), &recorder{}
	w.diff.Approvals = []activities.ApprovalItem{{Application: "postgres", Entitlement: "billing_write",
		Steps: []activities.ApprovalStep{step("manager", manager)}}}
	env := newMoverEnv(t, w, rec, nil)
	in := moverInput()
	id := ApprovalRequestID(MoverID("E100001", in.ChangeKey), "postgres", "billing_write")
	u := &updates{t: t, env: env}
	var decision *updateOutcome
	at(env, 2*time.Hour, func() {
		st := queryApprovals(t, env)
		require.Len(t, st.Requests, 1)
		assert.Equal(t, id, st.Requests[0].ID)
		assert.Equal(t, []string{manager}, st.WaitingApprovers)
		decision = u.send(approve(id, manager))
	})
	env.ExecuteWorkflow(Mover, in)
	res := moverResult(t, env)
	require.True(t, decision.accepted)
	require.Len(t, res.Approvals, 1)
	assert.Equal(t, RequestGranted, res.Approvals[0].State)
	assert.Contains(t, res.Granted, activities.GrantRef{Application: "postgres", Entitlement: "billing_write"})
	assert.Equal(t, testStart.Add(2*time.Hour), rec.at["grant postgres/billing_write"])
	assert.True(t, rec.at["revoke ldap/engineering"].Before(testStart.Add(time.Hour)),
		"the old access goes at once, not after the approval")

	wfID, app, ent, err := ParseApprovalRequestID(id)
	require.NoError(t, err, "approve finds the mover run from the request ID")
	assert.Equal(t, MoverID("E100001", in.ChangeKey), wfID)
	assert.Equal(t, "postgres", app)
	assert.Equal(t, "billing_write", ent)
}

func TestMoverRefusesSomeoneNeverHired(t *testing.T) {
	w, rec := newMoverWorld(), &recorder{}
	w.username = ""
	w.onboarding = func(int) activities.AwaitWorkflowClosedResult {
		return activities.AwaitWorkflowClosedResult{Closed: true}
	}
	env := newMoverEnv(t, w, rec, nil)
	env.ExecuteWorkflow(Mover, moverInput())
	err := env.GetWorkflowError()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hire them first")
}

func TestMoverRefusesABlockedSeparationOfDuties(t *testing.T) {
	w, rec := newMoverWorld(), &recorder{}
	w.diff.Blocked = []string{`separation of duties "x" forbids holding a/b and c/d together`}
	env := newMoverEnv(t, w, rec, nil)
	env.ExecuteWorkflow(Mover, moverInput())
	err := env.GetWorkflowError()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "separation of duties")
	assert.Contains(t, err.Error(), "nothing was changed")
	assert.NotContains(t, rec.list(), "grant ldap/sales")
}

func TestMoverChangeKeyIsTheSameForTheSameChange(t *testing.T) {
	p := movedPerson()
	p.Attributes = map[string]string{"cost_center": "42", "floor": "3"}
	q := p
	q.Attributes = map[string]string{"floor": "3", "cost_center": "42"}
	q.GivenName, q.Email = "Other", "other@example.com"
	assert.Equal(t, MoverChangeKey(p), MoverChangeKey(q), "names and e-mail are not part of the change")
	assert.Equal(t, MoverID(p.EmployeeID, MoverChangeKey(p)), MoverID(q.EmployeeID, MoverChangeKey(q)))
	for _, change := range []func(*hr.Person){
		func(p *hr.Person) { p.Department = "Support" },
		func(p *hr.Person) { p.Title = "Sales Engineer" },
		func(p *hr.Person) { p.ManagerID = "E100008" },
		func(p *hr.Person) { p.Location = "Remote" },
		func(p *hr.Person) { p.EmploymentType = hr.TypeContractor },
		func(p *hr.Person) { p.Attributes = map[string]string{"cost_center": "43", "floor": "3"} },
	} {
		r := p
		change(&r)
		assert.NotEqual(t, MoverChangeKey(p), MoverChangeKey(r))
	}
	id := MoverID(p.EmployeeID, MoverChangeKey(p))
	assert.Regexp(t, `^mover-E100001-[0-9a-f]{12}$`, id)
}

func TestMoverRefusesAnInvalidRecordOrKey(t *testing.T) {
	in := moverInput()
	in.Person.Email = ""
	bad := moverInput()
	bad.ChangeKey = "a/b"
	for _, in := range []MoverInput{in, bad} {
		w, rec := newMoverWorld(), &recorder{}
		env := newMoverEnv(t, w, rec, nil)
		env.ExecuteWorkflow(Mover, in)
		err := env.GetWorkflowError()
		require.Error(t, err)
		assert.Equal(t, string(connectors.KindInvalid), applicationType(err))
		assert.Empty(t, rec.list())
	}
}
