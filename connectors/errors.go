package connectors

import (
	"context"
	"errors"
	"net"
)

// KindOf returns the kind of err: the Kind of an *Error in its chain, Timeout
// for deadline errors, Unavailable for network errors, and Unavailable for
// anything unrecognised so that an unknown failure is retried rather than
// silently treated as final.
func KindOf(err error) ErrorKind {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Kind
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout
	}
	return KindUnavailable
}

// IsNotFound reports whether err says the account or entitlement is absent.
func IsNotFound(err error) bool {
	var ce *Error
	return errors.As(err, &ce) && ce.Kind == KindNotFound
}
