package workflows

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
)

var testStart = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func testPerson(start time.Time) hr.Person {
	return hr.Person{
		EmployeeID: "E100001", GivenName: "José", FamilyName: "Muñoz", Email: "jose.munoz@example.com",
		Department: "Engineering", Title: "Engineer", Location: "Berlin", EmploymentType: hr.TypeEmployee,
		StartDate: hr.Date{Time: start}, Status: hr.StatusActive,
	}
}

var testPlan = activities.PlanAccessResult{
	PolicyVersion: "v1",
	Applications: []activities.AppAccess{
		{Application: "ldap", Entitlements: []string{"all-staff", "engineering"}},
		{Application: "postgres", Entitlements: []string{"analytics_read"}},
	},
}

// recorder keeps the order of side effects the mocked activities saw, so
// tests can assert what was done and undone.
type recorder struct {
	mu    sync.Mutex
	calls []string
	// at is the workflow clock when each call last happened.
	at  map[string]time.Time
	now func() time.Time
	// audits are the ledger audits each change call received, in order.
	audits map[string][]activities.Audit
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
	if r.now != nil {
		if r.at == nil {
			r.at = map[string]time.Time{}
		}
		r.at[s] = r.now().UTC()
	}
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// newEnv returns a test environment with every activity mocked to succeed
// and record itself; fail, when set, decides the error of a call.
func newEnv(t *testing.T, rec *recorder, fail func(call string) error) *testsuite.TestWorkflowEnvironment {
	return newEnvWithPlan(t, rec, fail, testPlan)
}

// testManagers is the HR reporting line ManagerOf answers from.
var testManagers = map[string]string{"E100008": "E100007", "E100088": "E100029", "E100007": ""}

// newEnvWithPlan is newEnv with plan as the policy's answer.
func newEnvWithPlan(t *testing.T, rec *recorder, fail func(call string) error, plan activities.PlanAccessResult) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(testStart)
	rec.now = env.Now
	env.RegisterWorkflow(Onboarding)
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
	env.OnActivity(acts.ReserveUsername, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReserveUsernameInput) (activities.ReserveUsernameResult, error) {
			return activities.ReserveUsernameResult{Username: "jose.munoz"}, nil
		}).Maybe()
	env.OnActivity(acts.PlanAccess, mock.Anything, mock.Anything).Return(plan, nil).Maybe()
	env.OnActivity(acts.ManagerOf, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ManagerOfInput) (activities.ManagerOfResult, error) {
			m, ok := testManagers[in.EmployeeID]
			return activities.ManagerOfResult{ManagerID: m, Known: ok}, check("managerOf " + in.EmployeeID)
		}).Maybe()
	env.OnActivity(acts.EnsureAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EnsureAccountInput) (connectors.EnsureAccountResponse, error) {
			call := "ensure " + in.App
			if in.Disabled {
				call += " disabled"
			}
			return connectors.EnsureAccountResponse{Created: true}, cmp.Or(rec.audit(call, in.Audit), check(call))
		}).Maybe()
	env.OnActivity(acts.GrantEntitlement, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EntitlementInput) (connectors.EntitlementResponse, error) {
			return connectors.EntitlementResponse{Changed: true}, cmp.Or(rec.audit("grant "+in.App+"/"+in.Entitlement, in.Audit), check("grant "+in.App+"/"+in.Entitlement))
		}).Maybe()
	env.OnActivity(acts.RevokeEntitlement, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EntitlementInput) (connectors.EntitlementResponse, error) {
			return connectors.EntitlementResponse{Changed: true}, cmp.Or(rec.audit("revoke "+in.App+"/"+in.Entitlement, in.Audit), check("revoke "+in.App+"/"+in.Entitlement))
		}).Maybe()
	env.OnActivity(acts.EnableAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AccountInput) (connectors.EnableResponse, error) {
			return connectors.EnableResponse{Changed: true}, cmp.Or(rec.audit("enable "+in.App, in.Audit), check("enable "+in.App))
		}).Maybe()
	env.OnActivity(acts.DeleteAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AccountInput) (connectors.DeleteResponse, error) {
			return connectors.DeleteResponse{Deleted: true}, cmp.Or(rec.audit("delete "+in.App, in.Audit), check("delete "+in.App))
		}).Maybe()
	return env
}

func TestOnboardingProvisionsEveryApplication(t *testing.T) {
	rec := &recorder{}
	env := newEnv(t, rec, nil)
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart.Add(-24 * time.Hour))})

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res OnboardingResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, "jose.munoz", res.Username)
	require.Equal(t, "v1", res.PolicyVersion)
	require.Equal(t, []AccountResult{
		{Application: "ldap", Username: "jose.munoz", Created: true, Entitlements: []string{"all-staff", "engineering"}},
		{Application: "postgres", Username: "jose.munoz", Created: true, Entitlements: []string{"analytics_read"}},
	}, res.Accounts)
	require.ElementsMatch(t, []string{
		"ensure ldap", "grant ldap/all-staff", "grant ldap/engineering",
		"ensure postgres", "grant postgres/analytics_read",
	}, rec.list())
	require.Equal(t, testStart, res.EnabledAt, "a past start date enables at once")

	v, err := env.QueryWorkflow(QueryState)
	require.NoError(t, err)
	var st OnboardingState
	require.NoError(t, v.Get(&st))
	require.Equal(t, StateCompleted, st.State)
}

func TestOnboardingKeepsEachApplicationsStepsInOrder(t *testing.T) {
	rec := &recorder{}
	env := newEnv(t, rec, nil)
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
	require.NoError(t, env.GetWorkflowError())
	idx := map[string]int{}
	for i, c := range rec.list() {
		idx[c] = i
	}
	require.Less(t, idx["ensure ldap"], idx["grant ldap/all-staff"])
	require.Less(t, idx["grant ldap/all-staff"], idx["grant ldap/engineering"])
	require.Less(t, idx["ensure postgres"], idx["grant postgres/analytics_read"])
}

func TestOnboardingFutureStartDateProvisionsDisabledThenEnablesOnTheDay(t *testing.T) {
	start := time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)
	rec := &recorder{}
	env := newEnv(t, rec, nil)
	// Half-way through the wait, the run reports that it waits for the day.
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryState)
		require.NoError(t, err)
		var st OnboardingState
		require.NoError(t, v.Get(&st))
		require.Equal(t, StateWaitingStart, st.State)
		require.Equal(t, "2027-01-04", st.StartDate)
	}, 20*24*time.Hour)

	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(start)})
	require.NoError(t, env.GetWorkflowError())
	calls := rec.list()
	require.Contains(t, calls, "ensure ldap disabled")
	require.Contains(t, calls, "ensure postgres disabled")
	require.Contains(t, calls, "enable ldap")
	require.Contains(t, calls, "enable postgres")
	require.Equal(t, start, rec.at["enable ldap"], "accounts are enabled exactly on the start date")
	require.Equal(t, start, rec.at["enable postgres"])
	require.Equal(t, testStart, rec.at["ensure ldap disabled"], "accounts are provisioned ahead of time")
	var res OnboardingResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, start, res.EnabledAt)
}

func TestOnboardingCompensatesAFailureInEachPosition(t *testing.T) {
	permanent := temporal.NewApplicationError("ldap GrantEntitlement: PermissionDenied: insufficient access", string(connectors.KindPermission))
	cases := []struct {
		name       string
		failOn     string
		wantUndone []string
		wantKept   []string
	}{
		{
			name: "first account", failOn: "ensure ldap",
			// postgres finished its steps; all of it is undone, and the ldap
			// account whose creation failed is deleted in case it exists.
			wantUndone: []string{"revoke postgres/analytics_read", "delete postgres", "delete ldap"},
		},
		{
			name: "middle grant", failOn: "grant ldap/engineering",
			wantUndone: []string{"revoke ldap/engineering", "revoke ldap/all-staff", "delete ldap", "revoke postgres/analytics_read", "delete postgres"},
		},
		{
			name: "last grant", failOn: "grant postgres/analytics_read",
			wantUndone: []string{"revoke postgres/analytics_read", "delete postgres", "revoke ldap/engineering", "revoke ldap/all-staff", "delete ldap"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			env := newEnv(t, rec, func(call string) error {
				if call == tc.failOn {
					return permanent
				}
				return nil
			})
			env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
			require.True(t, env.IsWorkflowCompleted())
			err := env.GetWorkflowError()
			require.Error(t, err)
			var ae *temporal.ApplicationError
			require.True(t, errors.As(err, &ae))
			require.Equal(t, "OnboardingFailed", ae.Type())
			require.Contains(t, ae.Error(), "insufficient access", "the failure names the cause")

			calls := rec.list()
			undone := []string{}
			for _, c := range calls {
				if len(c) > 6 && (c[:6] == "revoke" || c[:6] == "delete") {
					undone = append(undone, c)
				}
			}
			require.ElementsMatch(t, tc.wantUndone, undone)
			// Within one application, undo runs in reverse order.
			pos := map[string]int{}
			for i, c := range calls {
				pos[c] = i
			}
			if _, ok := pos["revoke ldap/engineering"]; ok {
				require.Less(t, pos["revoke ldap/engineering"], pos["revoke ldap/all-staff"])
				require.Less(t, pos["revoke ldap/all-staff"], pos["delete ldap"])
			}

			v, qerr := env.QueryWorkflow(QueryState)
			require.NoError(t, qerr)
			var st OnboardingState
			require.NoError(t, v.Get(&st))
			require.Equal(t, StateFailed, st.State)
			require.Empty(t, st.Accounts, "nothing is reported as held after compensation")
		})
	}
}

func TestOnboardingRetriesATransientErrorWithoutCompensating(t *testing.T) {
	rec := &recorder{}
	attempts := 0
	env := newEnv(t, rec, func(call string) error {
		if call == "ensure ldap" {
			attempts++
			if attempts < 3 {
				return temporal.NewApplicationError("ldap unreachable", string(connectors.KindUnavailable))
			}
		}
		return nil
	})
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, 3, attempts)
	for _, c := range rec.list() {
		require.NotContains(t, c, "delete", "a retried step succeeded: nothing to undo")
	}
}

func TestOnboardingCancelledWhileWaitingForStartDateRemovesEverything(t *testing.T) {
	rec := &recorder{}
	env := newEnv(t, rec, nil)
	env.RegisterDelayedCallback(env.CancelWorkflow, 24*time.Hour)
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart.Add(30 * 24 * time.Hour))})

	require.True(t, env.IsWorkflowCompleted())
	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "got %v", env.GetWorkflowError())
	require.ElementsMatch(t, []string{
		"ensure ldap disabled", "grant ldap/all-staff", "grant ldap/engineering",
		"ensure postgres disabled", "grant postgres/analytics_read",
		"revoke ldap/engineering", "revoke ldap/all-staff", "delete ldap",
		"revoke postgres/analytics_read", "delete postgres",
	}, rec.list())
}

func TestOnboardingRefusesAnInvalidRecordAndDoesNothing(t *testing.T) {
	rec := &recorder{}
	env := newEnv(t, rec, nil)
	p := testPerson(testStart)
	p.EmployeeID = "x,ou=admins"
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: p})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "employee_id")
	require.Empty(t, rec.list())
}

func TestOnboardingSchedulesTheLeaverAContractImplies(t *testing.T) {
	end := hr.Date{Time: time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC)}
	plan := testPlan
	plan.LeaverDate, plan.LeaverReason = end, "contract ends"
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, plan)
	env.RegisterWorkflow(Offboarding)
	var got OffboardingInput
	var startedAfterProvisioning bool
	env.OnWorkflow(Offboarding, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in OffboardingInput) (OffboardingResult, error) {
			got = in
			startedAfterProvisioning = slices.Contains(rec.list(), "grant postgres/analytics_read")
			return OffboardingResult{}, nil
		})
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, OffboardingInput{EmployeeID: "E100001", LastDay: end, Reason: "contract ends"}, got)
	require.True(t, startedAfterProvisioning, "scheduled once the person holds access")
	v, err := env.QueryWorkflow(QueryState)
	require.NoError(t, err)
	var st OnboardingState
	require.NoError(t, v.Get(&st))
	require.Equal(t, "2027-03-31", st.LeaverScheduled)
}

func TestOnboardingWithoutAnEndDateSchedulesNoLeaver(t *testing.T) {
	rec := &recorder{}
	env := newEnv(t, rec, nil)
	env.RegisterWorkflow(Offboarding)
	started := false
	env.OnWorkflow(Offboarding, mock.Anything, mock.Anything).Return(
		func(workflow.Context, OffboardingInput) (OffboardingResult, error) {
			started = true
			return OffboardingResult{}, nil
		}).Maybe()
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
	require.NoError(t, env.GetWorkflowError())
	require.False(t, started)
}
