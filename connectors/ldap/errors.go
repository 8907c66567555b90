package ldap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/provisio-dev/provisio/connectors"
)

// appName is the connector name used in errors and returned by Name.
const appName = "ldap"

// classify maps an error from go-ldap, the network or the context to an
// *connectors.Error for op. An *connectors.Error passes through unchanged.
// The go-ldap error text holds the result code and the server's diagnostic
// message, never request values such as passwords, so it is kept as cause.
func classify(op string, err error) error {
	return classifyf(op, err, "")
}

// classifyf is classify with a message saying what was being done; the kind
// still comes from err.
func classifyf(op string, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	kind, msg := kindOf(err)
	if format != "" {
		msg = fmt.Sprintf(format, args...) + ": " + msg
	}
	return connectors.Errorf(kind, appName, op, err, "%s", msg)
}

// kindOf decides the kind of a non-connector error and a short message.
func kindOf(err error) (connectors.ErrorKind, string) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return connectors.KindTimeout, "deadline exceeded"
	case errors.Is(err, context.Canceled):
		return connectors.KindUnavailable, "cancelled"
	case isTimeout(err):
		return connectors.KindTimeout, "the directory did not answer in time"
	}
	var le *goldap.Error
	if !errors.As(err, &le) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return connectors.KindTimeout, "the directory did not answer in time"
		}
		return connectors.KindUnavailable, "directory unreachable"
	}
	switch le.ResultCode {
	case goldap.ErrorNetwork, goldap.LDAPResultServerDown, goldap.LDAPResultConnectError,
		goldap.LDAPResultUnavailable, goldap.LDAPResultBusy, goldap.LDAPResultOther,
		goldap.LDAPResultOperationsError, goldap.LDAPResultLoopDetect:
		return connectors.KindUnavailable, "directory unavailable"
	case goldap.LDAPResultTimeLimitExceeded, goldap.LDAPResultTimeout:
		return connectors.KindTimeout, "the directory did not answer in time"
	case goldap.LDAPResultInvalidDNSyntax, goldap.LDAPResultNamingViolation,
		goldap.LDAPResultObjectClassViolation, goldap.LDAPResultInvalidAttributeSyntax,
		goldap.LDAPResultUndefinedAttributeType, goldap.LDAPResultInappropriateMatching,
		goldap.LDAPResultConstraintViolation, goldap.LDAPResultNotAllowedOnRDN,
		goldap.LDAPResultNotAllowedOnNonLeaf, goldap.LDAPResultObjectClassModsProhibited,
		goldap.LDAPResultFilterError, goldap.ErrorFilterCompile, goldap.LDAPResultProtocolError,
		goldap.LDAPResultSizeLimitExceeded, goldap.LDAPResultAdminLimitExceeded,
		goldap.LDAPResultAliasDereferencingProblem:
		return connectors.KindInvalid, "the directory refused the request as invalid"
	case goldap.LDAPResultInsufficientAccessRights, goldap.LDAPResultInvalidCredentials,
		goldap.LDAPResultInappropriateAuthentication, goldap.LDAPResultStrongAuthRequired,
		goldap.LDAPResultConfidentialityRequired, goldap.LDAPResultUnwillingToPerform,
		goldap.ErrorEmptyPassword:
		return connectors.KindPermission, "the directory refused the request"
	case goldap.LDAPResultEntryAlreadyExists, goldap.LDAPResultAttributeOrValueExists:
		return connectors.KindConflict, "already exists"
	case goldap.LDAPResultNoSuchObject, goldap.LDAPResultNoSuchAttribute:
		return connectors.KindNotFound, "no such entry"
	}
	return connectors.KindUnavailable, "unexpected directory error"
}

// isTimeout reports go-ldap's request time-out, which it signals as a
// network error with a fixed text rather than a distinct code.
func isTimeout(err error) bool {
	var le *goldap.Error
	return errors.As(err, &le) && le.ResultCode == goldap.ErrorNetwork &&
		le.Err != nil && strings.Contains(le.Err.Error(), "timed out")
}

// isConnError reports whether err means the connection is unusable, so it
// must be discarded rather than returned to the pool.
func isConnError(err error) bool {
	if err == nil {
		return false
	}
	// The chain is searched through any *connectors.Error wrapping, which
	// keeps its cause.
	var le *goldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case goldap.ErrorNetwork, goldap.LDAPResultServerDown, goldap.LDAPResultConnectError,
			goldap.ErrorUnexpectedMessage, goldap.ErrorUnexpectedResponse, goldap.ErrorMalformedPacket:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// hasCode reports whether err is an LDAP result with one of codes.
func hasCode(err error, codes ...uint16) bool {
	return goldap.IsErrorAnyOf(err, codes...)
}
