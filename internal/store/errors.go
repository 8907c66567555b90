package store

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

func asPgError(err error, target **pgconn.PgError) bool { return errors.As(err, target) }

// redactParseError drops the text of a URL parse error, which can echo the
// URL and its password back.
func redactParseError(err error) error {
	if err == nil {
		return nil
	}
	return errors.New("cannot parse the PostgreSQL URL (check its syntax; it is not shown because it may hold a password)")
}
