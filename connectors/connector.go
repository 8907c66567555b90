package connectors

import (
	"context"
	"fmt"
)

// Connector is the contract every target application implements. Every method
// is idempotent: ensuring an existing account, granting a held entitlement,
// revoking an absent one or deleting a missing account succeed and change
// nothing. Errors are *Error values (see Classify) and never carry secrets.
type Connector interface {
	// Name returns the application name this connector serves (e.g. "ldap").
	Name() string
	// EnsureAccount creates the account if absent, or updates its attributes
	// so they match the request. It never changes the enabled state of an
	// existing account unless Disabled is set on create.
	EnsureAccount(ctx context.Context, req EnsureAccountRequest) (EnsureAccountResponse, error)
	// GrantEntitlement adds the account to one entitlement (group or role).
	GrantEntitlement(ctx context.Context, req EntitlementRequest) (EntitlementResponse, error)
	// RevokeEntitlement removes the account from one entitlement.
	RevokeEntitlement(ctx context.Context, req EntitlementRequest) (EntitlementResponse, error)
	// DisableAccount blocks new logins and ends live sessions where the system
	// has them.
	DisableAccount(ctx context.Context, req AccountRequest) (DisableResponse, error)
	// EnableAccount lifts a disable.
	EnableAccount(ctx context.Context, req AccountRequest) (EnableResponse, error)
	// DeleteAccount removes the account; an account that is already gone is
	// not an error.
	DeleteAccount(ctx context.Context, req AccountRequest) (DeleteResponse, error)
	// GetAccount reads one account with its entitlements. A missing account
	// is an *Error of KindNotFound.
	GetAccount(ctx context.Context, req AccountRequest) (Account, error)
	// ListAccounts returns one page of accounts in a stable order. Pass the
	// returned NextPageToken to get the next page; an empty token ends.
	ListAccounts(ctx context.Context, req ListAccountsRequest) (ListAccountsResponse, error)
	// Verify reads the application back and reports whether a revocation
	// (a disable, a revoke or a delete) is in effect now, as the
	// application enforces it: a change the application accepted but
	// ignores reads as not verified. It changes nothing. An error means the
	// application could not be read, never that the check failed.
	Verify(ctx context.Context, req VerifyRequest) (Verification, error)
	// Close releases pooled connections.
	Close() error
}

// Account is an account as the target system holds it.
type Account struct {
	// Username is the account's stable login name in the target system.
	Username string `json:"username"`
	// EmployeeID links the account back to the HR record; empty for an
	// account the system did not create (e.g. a service account).
	EmployeeID string `json:"employeeId,omitempty"`
	// GivenName, FamilyName, DisplayName and Email are descriptive attributes.
	GivenName   string `json:"givenName,omitempty"`
	FamilyName  string `json:"familyName,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	Email       string `json:"email,omitempty"`
	// Disabled reports whether the target system blocks logins.
	Disabled bool `json:"disabled"`
	// Entitlements are the groups or roles the account holds, sorted.
	Entitlements []string `json:"entitlements,omitempty"`
}

// EnsureAccountRequest asks for an account with these attributes.
type EnsureAccountRequest struct {
	// Account holds the desired attributes; Username and EmployeeID are
	// required. Entitlements are ignored: grant them one by one.
	Account Account
	// Disabled creates a new account disabled (future start dates). It does
	// not change an existing account's state.
	Disabled bool
}

// EnsureAccountResponse says what EnsureAccount did.
type EnsureAccountResponse struct {
	// Created is true when the account did not exist before the call.
	Created bool `json:"created"`
	// Updated is true when an existing account's attributes were changed.
	Updated bool `json:"updated"`
}

// EntitlementRequest names one account and one entitlement.
type EntitlementRequest struct {
	Username    string
	Entitlement string
}

// EntitlementResponse says whether the call changed anything.
type EntitlementResponse struct {
	// Changed is false when the account already held (grant) or did not
	// hold (revoke) the entitlement.
	Changed bool `json:"changed"`
}

// AccountRequest names one account.
type AccountRequest struct {
	Username string
}

// DisableResponse says what DisableAccount did.
type DisableResponse struct {
	// Changed is false when the account was already disabled.
	Changed bool `json:"changed"`
	// SessionsEnded counts live sessions the call terminated.
	SessionsEnded int `json:"sessionsEnded"`
}

// EnableResponse says whether EnableAccount changed anything.
type EnableResponse struct {
	Changed bool `json:"changed"`
}

// DeleteResponse says whether DeleteAccount removed anything.
type DeleteResponse struct {
	// Deleted is false when the account was already gone.
	Deleted bool `json:"deleted"`
}

// Check names the revocation Verify looks for.
type Check string

// The checks Verify makes.
const (
	// CheckDisabled: the account exists and cannot log in, and no live
	// session of it remains where the application has sessions.
	CheckDisabled Check = "disabled"
	// CheckRevoked: the account does not hold the entitlement (an account
	// or entitlement that does not exist holds nothing).
	CheckRevoked Check = "revoked"
	// CheckDeleted: the account does not exist.
	CheckDeleted Check = "deleted"
)

// Valid reports whether c is one of the checks.
func (c Check) Valid() bool {
	return c == CheckDisabled || c == CheckRevoked || c == CheckDeleted
}

// VerifyRequest names the account, and for CheckRevoked the entitlement,
// to check.
type VerifyRequest struct {
	Username string
	Check    Check
	// Entitlement is required for CheckRevoked and must be empty otherwise.
	Entitlement string
}

// Verification is what a read-back found.
type Verification struct {
	// Verified is true when the revocation is in effect.
	Verified bool `json:"verified"`
	// Detail says what was read, in words an operator can act on: what
	// proved the revocation, or what still grants access.
	Detail string `json:"detail"`
}

// ListAccountsRequest asks for one page of accounts.
type ListAccountsRequest struct {
	// PageSize is the most accounts to return; 0 means DefaultPageSize.
	PageSize int
	// PageToken continues a previous listing; empty starts at the beginning.
	PageToken string
}

// DefaultPageSize is the page size used when a request does not set one.
const DefaultPageSize = 500

// MaxPageSize caps PageSize so one page never holds an unbounded number of
// accounts in memory.
const MaxPageSize = 5000

// PageSizeOrDefault returns the effective page size for a request.
func (r ListAccountsRequest) PageSizeOrDefault() int {
	switch {
	case r.PageSize <= 0:
		return DefaultPageSize
	case r.PageSize > MaxPageSize:
		return MaxPageSize
	default:
		return r.PageSize
	}
}

// ListAccountsResponse is one page of accounts.
type ListAccountsResponse struct {
	Accounts []Account `json:"accounts"`
	// NextPageToken is empty on the last page.
	NextPageToken string `json:"nextPageToken,omitempty"`
}

// ErrorKind classifies a connector failure by what the caller can do about it.
type ErrorKind string

// The error kinds. Unavailable and Timeout are worth retrying; the others are
// not, because the same request will fail the same way.
const (
	KindInvalid     ErrorKind = "InvalidInput"
	KindConflict    ErrorKind = "Conflict"
	KindPermission  ErrorKind = "PermissionDenied"
	KindNotFound    ErrorKind = "NotFound"
	KindUnavailable ErrorKind = "Unavailable"
	KindTimeout     ErrorKind = "Timeout"
	// KindNotVerified is a revocation the application accepted but that a
	// read-back does not show in effect (an application that ignores a
	// disable, a session that survived it). Retrying may help: the
	// application may catch up, or an operator may fix it.
	KindNotVerified ErrorKind = "NotVerified"
)

// Retryable reports whether a retry of the same request can succeed.
func (k ErrorKind) Retryable() bool {
	return k == KindUnavailable || k == KindTimeout || k == KindNotVerified
}

// Error is the one error type connectors return. Message must never hold a
// password, token or other secret; Err is kept for errors.Is/As but its text
// is only included after the connector has made sure it is secret-free.
type Error struct {
	Kind ErrorKind
	// App is the connector name, Op the operation (e.g. "EnsureAccount").
	App, Op string
	// Message says what went wrong in words an operator can act on.
	Message string
	Err     error
}

// Error implements error.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: %s: %s", e.App, e.Op, e.Kind, e.Message)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether a retry can help.
func (e *Error) Retryable() bool { return e.Kind.Retryable() }

// Errorf builds an *Error with a formatted message.
func Errorf(kind ErrorKind, app, op string, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, App: app, Op: op, Message: fmt.Sprintf(format, args...), Err: cause}
}

// EntitlementCatalog is implemented by connectors that can create the
// entitlements (groups, roles) themselves. Used to seed a fresh application
// from policy; production applications usually have them.
type EntitlementCatalog interface {
	// EnsureEntitlement creates the entitlement if absent; Changed reports
	// whether it was created.
	EnsureEntitlement(ctx context.Context, req EnsureEntitlementRequest) (EntitlementResponse, error)
}

// EnsureEntitlementRequest names one entitlement and describes it.
type EnsureEntitlementRequest struct {
	// Name is the entitlement as GrantEntitlement names it.
	Name string
	// Description is a human-readable text stored where the application
	// has a place for it; it is ignored otherwise.
	Description string
}
