package postgres

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/provisio-dev/provisio/connectors"
)

// classify maps a PostgreSQL or network failure to an ErrorKind by SQLSTATE
// (https://www.postgresql.org/docs/current/errcodes-appendix.html).
func classify(err error) connectors.ErrorKind {
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return connectors.KindTimeout
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		code := pe.Code
		switch {
		case code == "42710", code == "23505": // duplicate_object, unique_violation (racing CREATE ROLE)
			return connectors.KindConflict
		case code == "42704": // undefined_object
			return connectors.KindNotFound
		case code == "42501": // insufficient_privilege
			return connectors.KindPermission
		case strings.HasPrefix(code, "28"): // invalid_authorization_specification: our own credentials
			return connectors.KindPermission
		case code == "2BP01", code == "55006": // dependent_objects_still_exist, object_in_use
			return connectors.KindConflict
		case strings.HasPrefix(code, "22"), code == "42601", code == "42602", code == "42622",
			code == "42939", code == "0LP01": // data exception, syntax, invalid/too long/reserved name, invalid grant (membership loop)
			return connectors.KindInvalid
		case code == "57014": // query_canceled (statement_timeout)
			return connectors.KindTimeout
		case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "57P"), strings.HasPrefix(code, "53"),
			code == "40001", code == "40P01": // connection, shutdown, resources, serialization, deadlock
			return connectors.KindUnavailable
		}
		// Like connectors.KindOf, an unrecognised state is retried rather
		// than treated as final (e.g. 55P03 lock_not_available).
		return connectors.KindUnavailable
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return connectors.KindTimeout
	}
	return connectors.KindUnavailable
}

// scrubbed wraps a driver error so errors.As still reaches *pgconn.PgError,
// while its text has the connection URL and password removed.
type scrubbed struct {
	cause   error
	secrets []string
}

func (s *scrubbed) Error() string {
	msg := s.cause.Error()
	for _, secret := range s.secrets {
		msg = strings.ReplaceAll(msg, secret, "REDACTED")
	}
	return msg
}

func (s *scrubbed) Unwrap() error { return s.cause }

// fail turns err into a *connectors.Error of the right kind. An err that is
// already one passes through unchanged.
func (c *Client) fail(op string, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return ce
	}
	return connectors.Errorf(classify(err), c.name, op, &scrubbed{cause: err, secrets: c.secrets}, format, args...)
}
