package connectors

import (
	"context"
	"fmt"
	"slices"
)

// CheckVerifyRequest validates req for a connector's Verify, returning an
// InvalidInput *Error naming the problem.
func CheckVerifyRequest(app string, req VerifyRequest) error {
	switch {
	case !req.Check.Valid():
		return Errorf(KindInvalid, app, "Verify", nil, "check %q is not one of disabled, revoked, deleted", req.Check)
	case req.Username == "":
		return Errorf(KindInvalid, app, "Verify", nil, "username is empty")
	case req.Check == CheckRevoked && req.Entitlement == "":
		return Errorf(KindInvalid, app, "Verify", nil, "entitlement is empty for a revoked check")
	case req.Check != CheckRevoked && req.Entitlement != "":
		return Errorf(KindInvalid, app, "Verify", nil, "entitlement %q given for a %s check", req.Entitlement, req.Check)
	}
	return nil
}

// VerifyByReading answers a VerifyRequest from GetAccount alone: the
// account's Disabled flag, its Entitlements, or its absence. Connectors
// start from it and add what their application can prove beyond one read
// (a refused bind, no live session left).
func VerifyByReading(ctx context.Context, c Connector, req VerifyRequest) (Verification, error) {
	if err := CheckVerifyRequest(c.Name(), req); err != nil {
		return Verification{}, err
	}
	acct, err := c.GetAccount(ctx, AccountRequest{Username: req.Username})
	if IsNotFound(err) {
		switch req.Check {
		case CheckDisabled:
			// A disable that finds the account gone is not a disable: the
			// caller decides what a vanished account means.
			return Verification{Detail: fmt.Sprintf("account %q does not exist", req.Username)}, nil
		default:
			return Verification{Verified: true, Detail: fmt.Sprintf("account %q does not exist", req.Username)}, nil
		}
	}
	if err != nil {
		return Verification{}, err
	}
	switch req.Check {
	case CheckDisabled:
		if acct.Disabled {
			return Verification{Verified: true, Detail: "account reads as disabled"}, nil
		}
		return Verification{Detail: "account still reads as enabled"}, nil
	case CheckRevoked:
		if slices.Contains(acct.Entitlements, req.Entitlement) {
			return Verification{Detail: fmt.Sprintf("account still holds %q", req.Entitlement)}, nil
		}
		return Verification{Verified: true, Detail: fmt.Sprintf("account does not hold %q", req.Entitlement)}, nil
	default:
		return Verification{Detail: "account still exists"}, nil
	}
}
