package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
)

// UsernameReserver hands out the one stable username of a person.
type UsernameReserver interface {
	Reserve(ctx context.Context, employeeID, given, family string) (string, error)
}

// Planner turns a person into the access they should have.
type Planner interface {
	PlanAccess(ctx context.Context, p hr.Person) (PlanAccessResult, error)
}

// Activities carries the dependencies of every activity. Register one
// instance with the worker; workflows call its methods through a typed nil
// pointer.
type Activities struct {
	// Connectors are the target applications by name.
	Connectors map[string]connectors.Connector
	// Usernames reserves usernames.
	Usernames UsernameReserver
	// Planner decides access from policy.
	Planner Planner
	// Policy is the policy in force, for leaver retention.
	Policy PolicySource
	// Directory answers who manages whom, for escalating approvals.
	Directory Directory
	// Ledger records every change made in an application. The activities
	// that change applications refuse to run without it.
	Ledger Recorder
	// Reconciliation is what the reconciliation scan needs besides the
	// above; its activities refuse to run without it.
	Reconciliation *Reconciliation
}

// ReserveUsernameInput names the person a username is for.
type ReserveUsernameInput struct {
	EmployeeID string `json:"employeeId"`
	GivenName  string `json:"givenName"`
	FamilyName string `json:"familyName"`
}

// ReserveUsernameResult is the reserved username.
type ReserveUsernameResult struct {
	Username string `json:"username"`
}

// ReserveUsername returns the person's username, deriving and reserving it
// on first call; later calls return the same one.
func (a *Activities) ReserveUsername(ctx context.Context, in ReserveUsernameInput) (ReserveUsernameResult, error) {
	if !hr.ValidEmployeeID(in.EmployeeID) {
		return ReserveUsernameResult{}, invalid("ReserveUsername", "employee ID %q is not E + 6 digits", in.EmployeeID)
	}
	u, err := a.Usernames.Reserve(ctx, in.EmployeeID, in.GivenName, in.FamilyName)
	if err != nil {
		return ReserveUsernameResult{}, classify("usernames", "ReserveUsername", err)
	}
	return ReserveUsernameResult{Username: u}, nil
}

// PlanAccessInput is the person to plan for.
type PlanAccessInput struct {
	Person hr.Person `json:"person"`
}

// PlanAccessResult is the access a person should hold, per application,
// with the policy version that decided it. Recording it in the history (as
// an activity result) keeps the "why" of every grant with the run.
type PlanAccessResult struct {
	PolicyVersion string `json:"policyVersion"`
	// Applications is the access granted without a human step, sorted.
	Applications []AppAccess `json:"applications"`
	// Approvals is planned access granted only once its approval steps
	// pass, sorted like Applications.
	Approvals []ApprovalItem `json:"approvals,omitempty"`
	// Deferred is planned access this process does not grant by itself
	// (temporary-only), with the reason.
	Deferred []DeferredAccess `json:"deferred,omitempty"`
	// LeaverDate is the last day the HR record already implies (a
	// contractor's end date); the onboarding schedules the offboarding for
	// it. Zero when none.
	LeaverDate   hr.Date `json:"leaverDate,omitzero"`
	LeaverReason string  `json:"leaverReason,omitempty"`
	// Reasons explains each granted entitlement ("app/entitlement" -> the
	// rules and roles behind it), for the audit trail.
	Reasons map[string][]string `json:"reasons,omitempty"`
}

// DeferredAccess is planned access left for a later, human-approved step.
type DeferredAccess struct {
	Application string `json:"application"`
	Entitlement string `json:"entitlement"`
	Reason      string `json:"reason"`
}

// ApprovalItem is one planned entitlement that needs approval, with the
// steps to pass in order.
type ApprovalItem struct {
	Application string         `json:"application"`
	Entitlement string         `json:"entitlement"`
	Steps       []ApprovalStep `json:"steps"`
}

// ApprovalStep is one approval, resolved by policy to the person who gives
// it. It mirrors policy.ApprovalStep so workflows do not depend on the
// policy engine.
type ApprovalStep struct {
	// Kind is manager, owner or named.
	Kind string `json:"kind"`
	// ApproverID is the employee ID asked; empty only when Unresolved.
	ApproverID string `json:"approverId,omitempty"`
	// EscalateAfter is when the approver's manager may decide as well,
	// counted from the start of the step.
	EscalateAfter time.Duration `json:"escalateAfter"`
	// ExpireAfter is when the step counts as rejected, counted from its
	// start.
	ExpireAfter time.Duration `json:"expireAfter"`
	// Fallback explains why ApproverID is not the usual approver.
	Fallback string `json:"fallback,omitempty"`
	// Unresolved means nobody but the person could approve: the request is
	// rejected at once.
	Unresolved bool `json:"unresolved,omitempty"`
}

// AppAccess is the planned access in one application.
type AppAccess struct {
	Application  string   `json:"application"`
	Entitlements []string `json:"entitlements,omitempty"`
}

// PlanAccess asks policy what the person should hold. Running it as an
// activity records the plan and its policy version in the history.
func (a *Activities) PlanAccess(ctx context.Context, in PlanAccessInput) (PlanAccessResult, error) {
	if err := in.Person.Validate(); err != nil {
		return PlanAccessResult{}, invalid("PlanAccess", "%v", err)
	}
	res, err := a.Planner.PlanAccess(ctx, in.Person)
	if err != nil {
		return PlanAccessResult{}, classify("policy", "PlanAccess", err)
	}
	apps := make([]string, 0, len(res.Applications)+len(res.Approvals))
	for _, app := range res.Applications {
		apps = append(apps, app.Application)
	}
	// Approval items too: finding out only after an approver said yes would
	// undo the whole onboarding.
	for _, item := range res.Approvals {
		apps = append(apps, item.Application)
	}
	for _, app := range apps {
		if _, ok := a.Connectors[app]; !ok {
			return PlanAccessResult{}, invalid("PlanAccess", "policy plans access in application %q, which this worker has no connector for", app)
		}
	}
	return res, nil
}

// EnsureAccountInput asks for one account in one application.
type EnsureAccountInput struct {
	App      string             `json:"app"`
	Account  connectors.Account `json:"account"`
	Disabled bool               `json:"disabled,omitempty"`
	// Audit is recorded in the access ledger when the account is created.
	Audit Audit `json:"audit"`
}

// EnsureAccount creates or updates the account (create-if-absent). A
// created account is recorded in the ledger (as created disabled when
// Disabled is set); an update of an existing one is not, since it changes
// no access.
func (a *Activities) EnsureAccount(ctx context.Context, in EnsureAccountInput) (connectors.EnsureAccountResponse, error) {
	const op = "EnsureAccount"
	c, err := a.connector(in.App, op)
	if err != nil {
		return connectors.EnsureAccountResponse{}, err
	}
	ch, err := a.prepare(ctx, op, in.Audit, in.App, in.Account.Username, "", ledger.ActionCreated)
	if err != nil {
		return connectors.EnsureAccountResponse{}, err
	}
	ch.entry.Disabled = in.Disabled
	res, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: in.Account, Disabled: in.Disabled})
	if err != nil {
		return res, classify(in.App, op, err)
	}
	// On a retry an account that needed no update is most likely the one
	// an earlier attempt created; one that needed an update existed before.
	return res, a.record(ctx, op, ch, res.Created || (ch.retry && !res.Updated))
}

// EntitlementInput names one entitlement of one account.
type EntitlementInput struct {
	App         string `json:"app"`
	Username    string `json:"username"`
	Entitlement string `json:"entitlement"`
	// Audit is recorded in the access ledger when the call changes access.
	Audit Audit `json:"audit"`
}

// GrantEntitlement adds the entitlement (no change if already held) and
// records the grant in the ledger.
func (a *Activities) GrantEntitlement(ctx context.Context, in EntitlementInput) (connectors.EntitlementResponse, error) {
	const op = "GrantEntitlement"
	c, err := a.connector(in.App, op)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	ch, err := a.prepare(ctx, op, in.Audit, in.App, in.Username, in.Entitlement, ledger.ActionGranted)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	res, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: in.Username, Entitlement: in.Entitlement})
	if err != nil {
		return res, classify(in.App, op, err)
	}
	return res, a.record(ctx, op, ch, ch.happened(res.Changed))
}

// RevokeEntitlement removes the entitlement, reads the account back until
// it no longer holds it, and records the verified revocation in the
// ledger. An account that is already gone holds nothing, so that is success
// too. A revocation the application does not apply is a retryable
// NotVerified error, recorded nowhere.
func (a *Activities) RevokeEntitlement(ctx context.Context, in EntitlementInput) (connectors.EntitlementResponse, error) {
	const op = "RevokeEntitlement"
	c, err := a.connector(in.App, op)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	ch, err := a.prepare(ctx, op, in.Audit, in.App, in.Username, in.Entitlement, ledger.ActionRevoked)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	res, err := c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: in.Username, Entitlement: in.Entitlement})
	if connectors.IsNotFound(err) {
		res, err = connectors.EntitlementResponse{}, nil
	}
	if err != nil {
		return res, classify(in.App, op, err)
	}
	if err := a.verify(ctx, op, c, &ch, connectors.VerifyRequest{
		Username: in.Username, Check: connectors.CheckRevoked, Entitlement: in.Entitlement,
	}, ledger.VerifiedReadBack); err != nil {
		return res, err
	}
	return res, a.record(ctx, op, ch, ch.happened(res.Changed))
}

// AccountInput names one account in one application.
type AccountInput struct {
	App      string `json:"app"`
	Username string `json:"username"`
	// Audit is recorded in the access ledger when the call changes the
	// account.
	Audit Audit `json:"audit"`
}

// EnableAccount lifts a disable (e.g. on the start date) and records it in
// the ledger.
func (a *Activities) EnableAccount(ctx context.Context, in AccountInput) (connectors.EnableResponse, error) {
	const op = "EnableAccount"
	c, ch, err := a.accountChange(ctx, op, in, ledger.ActionEnabled)
	if err != nil {
		return connectors.EnableResponse{}, err
	}
	res, err := c.EnableAccount(ctx, connectors.AccountRequest{Username: in.Username})
	if err != nil {
		return res, classify(in.App, op, err)
	}
	return res, a.record(ctx, op, ch, ch.happened(res.Changed))
}

// DisableAccount blocks logins and ends sessions, reads the account back
// until the application shows it can no longer be used (see
// connectors.CheckDisabled), and records the verified disable in the
// ledger, even when the account was disabled already: the read-back is the
// evidence that access is gone, and the ledger keeps it. An application
// that accepts the disable and ignores it fails the activity with a
// retryable NotVerified error and nothing recorded; the leaver then applies
// the application's disable_fallback. An account the application no
// longer has (gone before the disable, or removed by it) is recorded as
// deleted once read back, and reported as NotFound.
func (a *Activities) DisableAccount(ctx context.Context, in AccountInput) (connectors.DisableResponse, error) {
	const op = "DisableAccount"
	c, ch, err := a.accountChange(ctx, op, in, ledger.ActionDisabled)
	if err != nil {
		return connectors.DisableResponse{}, err
	}
	res, err := c.DisableAccount(ctx, connectors.AccountRequest{Username: in.Username})
	if connectors.IsNotFound(err) {
		return res, a.gone(ctx, op, c, ch, err)
	}
	if err != nil {
		return res, classify(in.App, op, err)
	}
	err = a.verify(ctx, op, c, &ch, connectors.VerifyRequest{Username: in.Username, Check: connectors.CheckDisabled}, ledger.VerifiedReadBack)
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == string(connectors.KindNotVerified) {
		// Some applications remove an account they are asked to disable
		// (a deactivation that is a soft delete): gone removes access as
		// surely as disabled.
		if v, verr := c.Verify(ctx, connectors.VerifyRequest{Username: in.Username, Check: connectors.CheckDeleted}); verr == nil && v.Verified {
			return res, a.gone(ctx, op, c, ch, connectors.Errorf(connectors.KindNotFound, in.App, op, nil,
				"account %q is gone: the application removed it when it was disabled", in.Username))
		}
	}
	if err != nil {
		return res, err
	}
	return res, a.record(ctx, op, ch, true)
}

// gone settles a disable that finds the account gone: the application says
// it does not exist, which removes access as surely as a disable. Once a
// read-back confirms it, the account is recorded as deleted (verified), and
// the NotFound error tells the workflow to count it deleted.
func (a *Activities) gone(ctx context.Context, op string, c connectors.Connector, disable change, notFound error) error {
	del := disable
	del.entry.Action = ledger.ActionDeleted
	del.entry.Note = strings.TrimPrefix(del.entry.Note+"; found gone when disabling", "; ")
	if err := a.verify(ctx, op, c, &del, connectors.VerifyRequest{Username: del.entry.Account, Check: connectors.CheckDeleted}, ledger.VerifiedReadBack); err != nil {
		return err
	}
	if err := a.record(ctx, op, del, true); err != nil {
		return err
	}
	return classify(del.entry.Application, op, notFound)
}

// DeleteAccount removes the account (delete-if-present), reads the
// application back until the account is gone, and records the verified
// deletion in the ledger. With Audit.Fallback (the application ignored a
// disable) the deletion is recorded as verified by fallback-delete, even
// when the account was gone already, since it stands for the disable.
func (a *Activities) DeleteAccount(ctx context.Context, in AccountInput) (connectors.DeleteResponse, error) {
	const op = "DeleteAccount"
	c, ch, err := a.accountChange(ctx, op, in, ledger.ActionDeleted)
	if err != nil {
		return connectors.DeleteResponse{}, err
	}
	res, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: in.Username})
	if err != nil {
		return res, classify(in.App, op, err)
	}
	how := ledger.VerifiedReadBack
	if in.Audit.Fallback {
		how = ledger.VerifiedFallbackDelete
	}
	if err := a.verify(ctx, op, c, &ch, connectors.VerifyRequest{Username: in.Username, Check: connectors.CheckDeleted}, how); err != nil {
		return res, err
	}
	return res, a.record(ctx, op, ch, ch.happened(res.Deleted) || in.Audit.Fallback)
}

// accountChange finds the connector of an account action and prepares its
// ledger entry.
func (a *Activities) accountChange(ctx context.Context, op string, in AccountInput, action ledger.Action) (connectors.Connector, change, error) {
	c, err := a.connector(in.App, op)
	if err != nil {
		return nil, change{}, err
	}
	ch, err := a.prepare(ctx, op, in.Audit, in.App, in.Username, "", action)
	return c, ch, err
}

func (a *Activities) connector(app, op string) (connectors.Connector, error) {
	c, ok := a.Connectors[app]
	if !ok {
		return nil, invalid(op, "no connector for application %q", app)
	}
	return c, nil
}

// invalid is an input error typed InvalidInput, which every workflow retry
// policy lists as non-retryable: the same input fails the same way.
func invalid(op, format string, args ...any) error {
	return temporal.NewApplicationError(op+": "+fmt.Sprintf(format, args...), string(connectors.KindInvalid))
}

// classify turns a connector error into an ApplicationError typed by its
// kind, so each workflow's retry policy decides what is worth retrying. Only
// the message travels: connector messages are secret-free by contract, and
// the other callers (username store, policy) wrap driver errors that carry
// no credentials. The cause is not attached, so nothing else of it reaches
// the history.
func classify(app, op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	kind := connectors.KindOf(err)
	var ce *connectors.Error
	msg := err.Error()
	if !errors.As(err, &ce) {
		msg = fmt.Sprintf("%s %s: %s: %v", app, op, kind, err)
	}
	return temporal.NewApplicationError(msg, string(kind))
}
