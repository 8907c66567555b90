package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/events"
)

// pollEvery is how often the bench reads the applications while it waits
// for a leaver's access to go; it bounds the figures' resolution.
const pollEvery = 2 * time.Millisecond

// killSwitch terminates each leaver in turn and times the call until every
// account is disabled in its application and no PostgreSQL session of the
// person is left, as read from the applications themselves.
func (b *bench) killSwitch(ctx context.Context, leavers []hire) (latencies, error) {
	lat, _, err := b.killSwitchTimed(ctx, leavers)
	return lat, err
}

// killSwitchTimed is killSwitch that also returns when each leaver's
// access was found gone.
func (b *bench) killSwitchTimed(ctx context.Context, leavers []hire) (latencies, []time.Time, error) {
	mon, err := pgxpool.New(ctx, b.cfg.Postgres.URL)
	if err != nil {
		return latencies{}, nil, fmt.Errorf("monitoring connection: %w", err)
	}
	defer mon.Close()
	ds := make([]time.Duration, 0, len(leavers))
	ends := make([]time.Time, 0, len(leavers))
	for _, h := range leavers {
		d, err := b.terminateOne(ctx, mon, h)
		if err != nil {
			return latencies{}, nil, err
		}
		ds = append(ds, d)
		ends = append(ends, time.Now())
	}
	return summarise(ds), ends, nil
}

func (b *bench) terminateOne(ctx context.Context, mon *pgxpool.Pool, h hire) (time.Duration, error) {
	session, err := b.openSession(ctx, h.username)
	if err != nil {
		return 0, err
	}
	defer session.Close(context.WithoutCancel(ctx))
	t0 := time.Now()
	if _, err := b.start.Start(ctx, events.Event{Type: events.TypeTerminate, EmployeeID: h.employeeID, Reason: "benchmark"}); err != nil {
		return 0, fmt.Errorf("terminate %s: %w", h.employeeID, err)
	}
	pending := map[string]bool{}
	for _, app := range h.apps {
		pending[app] = true
	}
	sessionGone := false
	deadline := time.Now().Add(2 * time.Minute)
	for len(pending) > 0 || !sessionGone {
		for app := range pending {
			a, err := b.deps.Activities.Connectors[app].GetAccount(ctx, connectors.AccountRequest{Username: h.username})
			if err != nil {
				return 0, fmt.Errorf("read %s in %s: %w", h.username, app, err)
			}
			if a.Disabled {
				delete(pending, app)
			}
		}
		if !sessionGone {
			var n int
			if err := mon.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, h.username).Scan(&n); err != nil {
				return 0, fmt.Errorf("read sessions of %s: %w", h.username, err)
			}
			sessionGone = n == 0
		}
		if len(pending) == 0 && sessionGone {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s still has access after 2 minutes: applications %v, session gone %v", h.employeeID, keys(pending), sessionGone)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	return time.Since(t0), nil
}

// openSession logs in to PostgreSQL as the person (a live session the kill
// switch must end); the local cluster trusts loopback connections.
func (b *bench) openSession(ctx context.Context, username string) (*pgx.Conn, error) {
	cc, err := pgx.ParseConfig(b.cfg.Postgres.URL)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL URL: %w", err)
	}
	cc.User, cc.Password = username, ""
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("log in to PostgreSQL as %s: %w", username, err)
	}
	return conn, nil
}

// killSwitchUnderLoad times the leavers while a bulk import of --joiners
// new hires runs, waits for the import to finish too, and says how many
// leavers were done while it still ran.
func (b *bench) killSwitchUnderLoad(ctx context.Context, leavers []hire) (latencies, int, error) {
	roster, err := b.generateRoster(ctx, b.o.joiners)
	if err != nil {
		return latencies{}, 0, err
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.hireAll(ctx, roster)
		done <- err
	}()
	// Let the import build its queue before the first leaver.
	select {
	case err := <-done:
		return latencies{}, 0, fmt.Errorf("the background import ended before the leavers: %v", err)
	case <-time.After(3 * time.Second):
	}
	lat, ends, err := b.killSwitchTimed(ctx, leavers)
	importErr := <-done
	importEnd := time.Now()
	if err != nil {
		return lat, 0, err
	}
	if importErr != nil {
		return lat, 0, fmt.Errorf("background import: %w", importErr)
	}
	loaded := 0
	for _, t := range ends {
		if t.Before(importEnd) {
			loaded++
		}
	}
	return lat, loaded, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
