package workflows

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
)

const (
	holder    = "E100001"
	tempWFID  = "access-E100001-postgres-prod_admin"
	tempReqID = tempWFID + "/postgres/prod_admin"
)

// tempPlan is what PlanRequest answers: 90 days, reminded 7 days ahead,
// no approval unless steps are given.
func tempPlan(steps ...activities.ApprovalStep) activities.PlanRequestResult {
	return activities.PlanRequestResult{
		PolicyVersion: "v1", Username: "linus.lamport", AccountExists: true,
		Account:  connectors.Account{Username: "linus.lamport", EmployeeID: holder},
		Duration: 90 * day, MaxDuration: 90 * day, RemindBefore: 7 * day, ExtensionNeedsApproval: true,
		Steps: steps,
	}
}

type tempEnv struct {
	*testsuite.TestWorkflowEnvironment
	rec *recorder
	// plans counts PlanRequest calls; plan answers each.
	plans int
}

// newTempEnv mocks every activity TemporaryAccess uses. plan answers
// PlanRequest call n (1-based); fail, when set, decides the error of a
// recorded call ("grant", "revoke", "create", "delete", "remind").
func newTempEnv(t *testing.T, plan func(n int, in activities.PlanRequestInput) (activities.PlanRequestResult, error), fail func(call string) error) *tempEnv {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := &tempEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), rec: &recorder{}}
	env.SetStartTime(testStart)
	env.rec.now = env.Now
	env.RegisterWorkflow(TemporaryAccess)
	env.RegisterActivity(&activities.Activities{})
	check := func(call string) error {
		env.rec.add(call)
		if fail != nil {
			return fail(call)
		}
		return nil
	}
	env.OnActivity(acts.PlanRequest, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanRequestInput) (activities.PlanRequestResult, error) {
			env.plans++
			return plan(env.plans, in)
		})
	env.OnActivity(acts.EnsureAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EnsureAccountInput) (connectors.EnsureAccountResponse, error) {
			return connectors.EnsureAccountResponse{Created: true}, cmp.Or(env.rec.audit("create", in.Audit), check("create"))
		}).Maybe()
	env.OnActivity(acts.GrantEntitlement, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EntitlementInput) (connectors.EntitlementResponse, error) {
			return connectors.EntitlementResponse{Changed: true}, cmp.Or(env.rec.audit("grant", in.Audit), check("grant"))
		}).Maybe()
	env.OnActivity(acts.RevokeEntitlement, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EntitlementInput) (connectors.EntitlementResponse, error) {
			return connectors.EntitlementResponse{Changed: true}, cmp.Or(env.rec.audit("revoke", in.Audit), check("revoke"))
		}).Maybe()
	env.OnActivity(acts.DeleteAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AccountInput) (connectors.DeleteResponse, error) {
			return connectors.DeleteResponse{Deleted: true}, cmp.Or(env.rec.audit("delete", in.Audit), check("delete"))
		}).Maybe()
	env.OnActivity(acts.RemindTemporaryAccess, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RemindInput) (activities.RemindResult, error) {
			return activities.RemindResult{Message: "ends at " + in.ExpiresAt.Format(time.RFC3339), Channel: "test"}, check("remind")
		}).Maybe()
	return env
}

func always(p activities.PlanRequestResult) func(int, activities.PlanRequestInput) (activities.PlanRequestResult, error) {
	return func(int, activities.PlanRequestInput) (activities.PlanRequestResult, error) { return p, nil }
}

func tempInput() TemporaryAccessInput {
	return TemporaryAccessInput{EmployeeID: holder, Application: "postgres", Entitlement: "prod_admin", Justification: "incident 42"}
}

func (e *tempEnv) result(t *testing.T) TemporaryAccessResult {
	t.Helper()
	require.True(t, e.IsWorkflowCompleted())
	require.NoError(t, e.GetWorkflowError())
	var res TemporaryAccessResult
	require.NoError(t, e.GetWorkflowResult(&res))
	return res
}

func (e *tempEnv) state(t *testing.T) TemporaryAccessState {
	t.Helper()
	v, err := e.QueryWorkflow(QueryState)
	require.NoError(t, err)
	var st TemporaryAccessState
	require.NoError(t, v.Get(&st))
	return st
}

// sendUpdate sends an update and keeps its outcome.
func (e *tempEnv) sendUpdate(name, id string, out any, args ...any) *updateOutcome {
	o := &updateOutcome{}
	e.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
		OnReject: func(err error) { o.rejected, o.done = err, true },
		OnAccept: func() { o.accepted = true },
		OnComplete: func(v any, err error) {
			o.done, o.err = true, err
			if r, ok := out.(*ExtendResult); ok && err == nil {
				switch x := v.(type) {
				case ExtendResult:
					*r = x
				case converter.EncodedValue:
					_ = x.Get(r)
				}
			}
		},
	}, args...)
	return o
}

func TestTemporaryAccessDefaultsTo90DaysRemindsAndRevokesExactly(t *testing.T) {
	env := newTempEnv(t, always(tempPlan()), nil)
	var mid TemporaryAccessState
	at(env.TestWorkflowEnvironment, 30*day, func() { mid = env.state(t) })
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	res := env.result(t)

	assert.Equal(t, []string{"grant", "remind", "revoke"}, env.rec.list())
	assert.Equal(t, testStart, env.rec.at["grant"])
	assert.Equal(t, 83*day, env.rec.at["remind"].Sub(testStart), "reminded exactly remind_before (7d) ahead")
	assert.Equal(t, 90*day, env.rec.at["revoke"].Sub(testStart), "revoked exactly at 90 days")
	assert.Equal(t, 90*day, env.Now().Sub(testStart))

	assert.Equal(t, StateActive, mid.State)
	assert.Equal(t, testStart.Add(90*day), mid.ExpiresAt.UTC())
	assert.Equal(t, testStart.Add(83*day), mid.RemindAt.UTC())
	assert.Equal(t, StateExpired, res.State)
	assert.Equal(t, testStart.Add(83*day), res.RemindedAt.UTC())
	assert.Contains(t, res.Reminder, "ends at")
	assert.Equal(t, testStart.Add(90*day), res.EndedAt.UTC())
	assert.False(t, res.AccountCreated)
}

func TestTemporaryAccessCappedPlanIsHeldOnlyThatLong(t *testing.T) {
	plan := tempPlan()
	plan.Duration, plan.MaxDuration, plan.RemindBefore, plan.Capped = 8*time.Hour, 8*time.Hour, time.Hour, true
	env := newTempEnv(t, func(_ int, in activities.PlanRequestInput) (activities.PlanRequestResult, error) {
		assert.Equal(t, 30*day, in.Duration, "the request's duration goes to policy")
		return plan, nil
	}, nil)
	in := tempInput()
	in.Duration = 30 * day
	env.ExecuteWorkflow(TemporaryAccess, in)
	res := env.result(t)
	assert.True(t, res.Capped)
	assert.Equal(t, 7*time.Hour, env.rec.at["remind"].Sub(testStart))
	assert.Equal(t, 8*time.Hour, env.rec.at["revoke"].Sub(testStart))
}

func TestTemporaryAccessCreatesAndDeletesAMissingAccount(t *testing.T) {
	plan := tempPlan()
	plan.AccountExists = false
	env := newTempEnv(t, always(plan), nil)
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	res := env.result(t)
	assert.Equal(t, []string{"create", "grant", "remind", "revoke", "delete"}, env.rec.list())
	assert.False(t, res.AccountCreated == false && res.State != StateExpired)
	assert.Equal(t, 90*day, env.rec.at["delete"].Sub(testStart))
}

func TestTemporaryAccessNeedsBothApprovalsBeforeTheGrant(t *testing.T) {
	env := newTempEnv(t, always(tempPlan(step("manager", manager), step("owner", owner))), nil)
	u := &updates{t: t, env: env.TestWorkflowEnvironment}
	at(env.TestWorkflowEnvironment, time.Hour, func() { u.send(approve(tempReqID, manager)) })
	at(env.TestWorkflowEnvironment, 2*time.Hour, func() {
		assert.Empty(t, env.rec.list(), "nothing granted before the owner approved")
		u.send(approve(tempReqID, owner))
	})
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	res := env.result(t)
	assert.Equal(t, 2*time.Hour, env.rec.at["grant"].Sub(testStart))
	assert.Equal(t, 2*time.Hour+90*day, env.rec.at["revoke"].Sub(testStart), "the 90 days count from the grant")
	require.Len(t, res.Approvals, 1)
	assert.Equal(t, RequestGranted, res.Approvals[0].State)
}

func TestTemporaryAccessRejectedGrantsNothing(t *testing.T) {
	env := newTempEnv(t, always(tempPlan(step("manager", manager))), nil)
	u := &updates{t: t, env: env.TestWorkflowEnvironment}
	at(env.TestWorkflowEnvironment, time.Hour, func() { u.send(reject(tempReqID, manager, "not on call")) })
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	res := env.result(t)
	assert.Empty(t, env.rec.list())
	assert.Equal(t, StateRejected, res.State)
	assert.Contains(t, res.EndReason, "not on call")
}

func TestTemporaryAccessGrantFailureLeavesNothing(t *testing.T) {
	plan := tempPlan()
	plan.AccountExists = false
	env := newTempEnv(t, always(plan), func(call string) error {
		if call == "grant" {
			return temporal.NewNonRetryableApplicationError("no such role", string(connectors.KindNotFound), nil)
		}
		return nil
	})
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	require.Error(t, env.GetWorkflowError())
	assert.Contains(t, env.GetWorkflowError().Error(), "no such role")
	assert.Equal(t, []string{"create", "grant", "revoke", "delete"}, env.rec.list(), "the undo revokes, then deletes the new account")
}

func TestTemporaryAccessEarlyRevoke(t *testing.T) {
	env := newTempEnv(t, always(tempPlan()), nil)
	var o1, o2 *updateOutcome
	at(env.TestWorkflowEnvironment, 5*day, func() {
		o1 = env.sendUpdate(UpdateRevoke, "r1", nil, RevokeInput{RequestedBy: manager, Reason: "incident closed"})
		// A second revoke is refused by the validator.
		o2 = env.sendUpdate(UpdateRevoke, "r2", nil, RevokeInput{RequestedBy: manager})
	})
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	res := env.result(t)
	assert.NoError(t, o1.rejected)
	assert.ErrorContains(t, o2.rejected, "already being revoked")
	assert.Equal(t, []string{"grant", "revoke"}, env.rec.list())
	assert.Equal(t, 5*day, env.rec.at["revoke"].Sub(testStart))
	assert.Equal(t, StateRevoked, res.State)
	assert.Equal(t, manager, res.EndedBy)
	assert.Equal(t, "incident closed", res.EndReason)
}

func TestTemporaryAccessRevokeWhileWaitingForApprovalGrantsNothing(t *testing.T) {
	env := newTempEnv(t, always(tempPlan(step("manager", manager))), nil)
	at(env.TestWorkflowEnvironment, time.Hour, func() {
		env.sendUpdate(UpdateRevoke, "r1", nil, RevokeInput{RequestedBy: holder, Reason: "not needed"})
	})
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	res := env.result(t)
	assert.Empty(t, env.rec.list())
	assert.Equal(t, StateRevoked, res.State)
	require.Len(t, res.Approvals, 1)
	assert.Equal(t, RequestCancelled, res.Approvals[0].State)
}

func TestTemporaryAccessCancelledRevokes(t *testing.T) {
	env := newTempEnv(t, always(tempPlan()), nil)
	at(env.TestWorkflowEnvironment, 10*day, func() { env.CancelWorkflow() })
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	require.True(t, env.IsWorkflowCompleted())
	require.Error(t, env.GetWorkflowError())
	assert.True(t, temporal.IsCanceledError(env.GetWorkflowError()))
	assert.Equal(t, []string{"grant", "revoke"}, env.rec.list())
	assert.Equal(t, 10*day, env.rec.at["revoke"].Sub(testStart))
}

func TestTemporaryAccessRevokeRetriesAndFlagsAttention(t *testing.T) {
	fails := 0
	env := newTempEnv(t, always(tempPlan()), func(call string) error {
		if call == "revoke" && fails < 7 {
			fails++
			return temporal.NewApplicationError("down", string(connectors.KindUnavailable))
		}
		return nil
	})
	var attention []bool
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetBool(AttrNeedsAttention); ok {
			attention = append(attention, v)
		}
	}).Return().Maybe()
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	res := env.result(t)
	assert.Equal(t, StateExpired, res.State)
	assert.Equal(t, []bool{true, false}, attention)
	assert.Empty(t, res.Problems)
}

func TestTemporaryAccessExtensionWithoutApprovalMovesTheExpiryExactly(t *testing.T) {
	plan := tempPlan()
	plan.ExtensionNeedsApproval = false
	env := newTempEnv(t, always(plan), nil)
	var got ExtendResult
	var o1, o2, o3 *updateOutcome
	at(env.TestWorkflowEnvironment, 85*day, func() {
		// Reminded at 83d; extending moves the reminder too.
		o1 = env.sendUpdate(UpdateExtend, "e1", &got, ExtendInput{Duration: 30 * day, RequestedBy: holder})
	})
	at(env.TestWorkflowEnvironment, 86*day, func() {
		// 34d left + 90d is more than 90d ahead.
		o2 = env.sendUpdate(UpdateExtend, "e2", nil, ExtendInput{Duration: 90 * day, RequestedBy: holder})
		o3 = env.sendUpdate(UpdateExtend, "e3", nil, ExtendInput{Duration: -time.Hour, RequestedBy: holder})
	})
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	res := env.result(t)
	assert.NoError(t, o1.rejected)
	assert.NoError(t, o1.err)
	assert.ErrorContains(t, o2.rejected, "more than the policy's 90d from now")
	assert.ErrorContains(t, o3.rejected, "must be positive")
	assert.Equal(t, ExtensionApplied, got.Extension.State)
	assert.Equal(t, testStart.Add(120*day), got.Extension.ExpiresAfter.UTC())
	assert.Equal(t, 120*day, env.rec.at["revoke"].Sub(testStart), "expiry moved by exactly 30 days")
	assert.Equal(t, 113*day, env.rec.at["remind"].Sub(testStart), "reminded again 7 days before the new expiry")
	assert.Equal(t, []string{"grant", "remind", "remind", "revoke"}, env.rec.list())
	require.Len(t, res.Extensions, 1)
}

func TestTemporaryAccessExtensionWithApproval(t *testing.T) {
	env := newTempEnv(t, always(tempPlan(step("manager", manager))), nil)
	u := &updates{t: t, env: env.TestWorkflowEnvironment}
	at(env.TestWorkflowEnvironment, time.Hour, func() { u.send(approve(tempReqID, manager)) })
	var got ExtendResult
	var o1, o2 *updateOutcome
	var before TemporaryAccessState
	at(env.TestWorkflowEnvironment, 10*day, func() {
		o1 = env.sendUpdate(UpdateExtend, "e1", &got, ExtendInput{Duration: 5 * day, RequestedBy: holder, Justification: "migration"})
	})
	at(env.TestWorkflowEnvironment, 11*day, func() {
		before = env.state(t)
		o2 = env.sendUpdate(UpdateExtend, "e2", nil, ExtendInput{Duration: day, RequestedBy: holder})
	})
	at(env.TestWorkflowEnvironment, 12*day, func() { u.send(approve(tempReqID, manager)) })
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	res := env.result(t)
	assert.NoError(t, o1.err)
	assert.Equal(t, testStart.Add(time.Hour+90*day), before.ExpiresAt.UTC(), "not moved before approval")
	assert.ErrorContains(t, o2.rejected, "already waits for approval")
	assert.Equal(t, ExtensionWaiting, got.Extension.State)
	assert.Equal(t, tempReqID, got.RequestID)
	assert.Equal(t, time.Hour+95*day, env.rec.at["revoke"].Sub(testStart), "moved by exactly 5 days once approved")
	require.Len(t, res.Extensions, 1)
	assert.Equal(t, ExtensionApplied, res.Extensions[0].State)
	require.Len(t, res.Approvals, 2, "the grant's round and the extension's")
	assert.Equal(t, RequestGranted, res.Approvals[1].State)
	assert.Equal(t, 2, env.plans, "the extension is planned by the policy in force")
}

func TestTemporaryAccessExtensionRejectedKeepsTheExpiry(t *testing.T) {
	env := newTempEnv(t, always(tempPlan(step("manager", manager))), nil)
	u := &updates{t: t, env: env.TestWorkflowEnvironment}
	at(env.TestWorkflowEnvironment, time.Minute, func() { u.send(approve(tempReqID, manager)) })
	at(env.TestWorkflowEnvironment, 10*day, func() {
		env.sendUpdate(UpdateExtend, "e1", nil, ExtendInput{Duration: 5 * day, RequestedBy: holder})
	})
	at(env.TestWorkflowEnvironment, 11*day, func() { u.send(reject(tempReqID, manager, "no")) })
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	res := env.result(t)
	assert.Equal(t, time.Minute+90*day, env.rec.at["revoke"].Sub(testStart), "the expiry did not move")
	require.Len(t, res.Extensions, 1)
	assert.Equal(t, ExtensionRejected, res.Extensions[0].State)
}

func TestTemporaryAccessContinuesAsNewAfterManyExtensions(t *testing.T) {
	plan := tempPlan()
	plan.ExtensionNeedsApproval = false
	env := newTempEnv(t, always(plan), nil)
	for i := range maxExtensionsPerRun {
		at(env.TestWorkflowEnvironment, time.Duration(i+1)*time.Hour, func() {
			env.sendUpdate(UpdateExtend, "e"+string(rune('a'+i)), nil, ExtendInput{Duration: time.Hour, RequestedBy: holder})
		})
	}
	env.ExecuteWorkflow(TemporaryAccess, tempInput())
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	err := env.GetWorkflowError()
	require.True(t, errors.As(err, &can), "continued as new: %v", err)
	var next TemporaryAccessInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.Continued)
	assert.Equal(t, testStart.Add(90*day+maxExtensionsPerRun*time.Hour), next.Continued.ExpiresAt.UTC())
	assert.Len(t, next.Continued.Extensions, maxExtensionsPerRun)
}

func TestOffboardingCancelsTemporaryAccess(t *testing.T) {
	env := newLeaverEnv(t, newWorld(), nil)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID})
	env.result(t)
	assert.Equal(t, 1, env.tempCancels, "the kill switch cancels the person's temporary access")
}
