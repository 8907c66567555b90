package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnsureDatabase creates the database named in storeURL if it does not
// exist, connecting through the same server's "postgres" database. It lets a
// fresh machine run the worker without a manual CREATE DATABASE.
func EnsureDatabase(ctx context.Context, storeURL string) error {
	cfg, err := pgx.ParseConfig(storeURL)
	if err != nil {
		return fmt.Errorf("store URL: %w", redactParseError(err))
	}
	name := cfg.Database
	if name == "" {
		// PostgreSQL would fall back to the user's name: say so instead.
		return fmt.Errorf("store URL names no database")
	}
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL at %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if err != nil && !createdByAnother(err) {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// createdByAnother reports whether CREATE DATABASE failed because another
// worker created the database between the check and the create. A create
// that loses the race while the winner's is still in flight fails on the
// catalog's unique index rather than with duplicate_database.
func createdByAnother(err error) bool {
	var pgErr *pgconn.PgError
	if !asPgError(err, &pgErr) {
		return false
	}
	return pgErr.Code == "42P04" || // duplicate_database
		(pgErr.Code == "23505" && pgErr.ConstraintName == "pg_database_datname_index") // unique_violation
}

// Open ensures the store database exists, connects a pool and applies the
// migrations: everything the worker needs before it serves.
func Open(ctx context.Context, storeURL string) (*pgxpool.Pool, error) {
	if err := EnsureDatabase(ctx, storeURL); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, storeURL)
	if err != nil {
		return nil, fmt.Errorf("store: %w", redactParseError(err))
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
