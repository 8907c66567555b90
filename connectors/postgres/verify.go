package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/provisio-dev/provisio/connectors"
)

// maxListedPIDs bounds how many session pids a detail names, so a role with
// hundreds of sessions still gets a readable detail.
const maxListedPIDs = 10

// Verify reads the catalogue back in one query per check, outside any
// transaction and without the role lock: it must see what PostgreSQL
// enforces at this moment, not wait behind an operation in flight.
//
// It is never more lenient than connectors.VerifyByReading on GetAccount:
// disabled also requires that no backend of the role is left in
// pg_stat_activity, in any database; and a role of the name counts as
// existing, and holds what pg_auth_members says, whether provisio manages
// it or not.
func (c *Client) Verify(ctx context.Context, req connectors.VerifyRequest) (connectors.Verification, error) {
	const op = "Verify"
	if err := connectors.CheckVerifyRequest(c.name, req); err != nil {
		return connectors.Verification{}, err
	}
	name, err := c.roleName(op, req.Username)
	if err != nil {
		return connectors.Verification{}, err
	}
	switch req.Check {
	case connectors.CheckDisabled:
		return c.verifyDisabled(ctx, op, req.Username, name)
	case connectors.CheckRevoked:
		groupName, err := c.groupName(op, req.Entitlement)
		if err != nil {
			return connectors.Verification{}, err
		}
		return c.verifyRevoked(ctx, op, req.Username, name, groupName)
	default:
		return c.verifyDeleted(ctx, op, req.Username, name)
	}
}

// verifyDisabled: the role is a managed account, is NOLOGIN, and no backend
// has it as its session user. pg_stat_activity shows pid and user of every
// backend to every role, so the connector needs no extra privilege here.
// Backends are matched as endSessions matches them, so what a disable ends
// is exactly what this checks.
func (c *Client) verifyDisabled(ctx context.Context, op, username, name string) (connectors.Verification, error) {
	var (
		canLogin bool
		comment  string
		pids     []int32
	)
	err := c.pool.QueryRow(ctx, `SELECT r.rolcanlogin, COALESCE(shobj_description(r.oid, 'pg_authid'), ''),
			ARRAY(SELECT a.pid FROM pg_stat_activity a
				WHERE a.usesysid = r.oid AND a.pid <> pg_backend_pid() ORDER BY a.pid)
		FROM pg_roles r WHERE r.rolname = $1`, name).Scan(&canLogin, &comment, &pids)
	if errors.Is(err, pgx.ErrNoRows) {
		// As in VerifyByReading: a vanished account was not disabled.
		return connectors.Verification{Detail: fmt.Sprintf("role %q does not exist", name)}, nil
	}
	if err != nil {
		return connectors.Verification{}, c.fail(op, err, "read role and sessions of %q", username)
	}
	_, managed := parseComment(comment)
	var problems []string
	switch {
	case !managed && !canLogin:
		// GetAccount reads this as no account at all (a group).
		problems = append(problems, fmt.Sprintf("role %q is a NOLOGIN role provisio does not manage, not an account", name))
	case !managed:
		problems = append(problems, fmt.Sprintf("role %q can still log in (it is not managed by provisio)", name))
	case canLogin:
		problems = append(problems, fmt.Sprintf("role %q can still log in", name))
	}
	if len(pids) > 0 {
		problems = append(problems, sessionsOpen(pids))
	}
	if len(problems) > 0 {
		return connectors.Verification{Detail: strings.Join(problems, "; ")}, nil
	}
	return connectors.Verification{Verified: true, Detail: fmt.Sprintf("role %q cannot log in and has no open session", name)}, nil
}

// sessionsOpen words the backends still open for a role.
func sessionsOpen(pids []int32) string {
	listed := make([]string, 0, min(len(pids), maxListedPIDs))
	for _, pid := range pids[:min(len(pids), maxListedPIDs)] {
		listed = append(listed, strconv.Itoa(int(pid)))
	}
	more := ""
	if n := len(pids) - len(listed); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	if len(pids) == 1 {
		return fmt.Sprintf("1 session of the role is still open (pid %s)", listed[0])
	}
	return fmt.Sprintf("%d sessions of the role are still open (pids %s%s)", len(pids), strings.Join(listed, ", "), more)
}

// verifyRevoked: the role is not a direct member of the group. Only direct
// memberships are entitlements (GrantEntitlement makes nothing else, and
// GetAccount lists nothing else); from PostgreSQL 16 a membership granted
// by several grantors is one membership here, held until the last goes.
func (c *Client) verifyRevoked(ctx context.Context, op, username, name, groupName string) (connectors.Verification, error) {
	var roleExists, groupExists, member bool
	err := c.pool.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
			EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2),
			EXISTS (SELECT 1 FROM pg_auth_members m
				JOIN pg_roles u ON u.oid = m.member
				JOIN pg_roles g ON g.oid = m.roleid
				WHERE u.rolname = $1 AND g.rolname = $2)`,
		name, groupName).Scan(&roleExists, &groupExists, &member)
	if err != nil {
		return connectors.Verification{}, c.fail(op, err, "read membership of %q in %q", username, groupName)
	}
	switch {
	case member:
		return connectors.Verification{Detail: fmt.Sprintf("role %q is still a member of %q", name, groupName)}, nil
	case !roleExists:
		return connectors.Verification{Verified: true, Detail: fmt.Sprintf("role %q does not exist, so it holds nothing", name)}, nil
	case !groupExists:
		return connectors.Verification{Verified: true, Detail: fmt.Sprintf("group role %q does not exist, so nobody holds it", groupName)}, nil
	}
	return connectors.Verification{Verified: true, Detail: fmt.Sprintf("role %q is not a member of %q", name, groupName)}, nil
}

// verifyDeleted: no role of the name exists. A role recreated by hand under
// the name is not a deleted account, whatever GetAccount makes of it.
func (c *Client) verifyDeleted(ctx context.Context, op, username, name string) (connectors.Verification, error) {
	var (
		canLogin bool
		comment  string
	)
	err := c.pool.QueryRow(ctx, `SELECT rolcanlogin, COALESCE(shobj_description(oid, 'pg_authid'), '')
		FROM pg_roles WHERE rolname = $1`, name).Scan(&canLogin, &comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return connectors.Verification{Verified: true, Detail: fmt.Sprintf("role %q does not exist", name)}, nil
	}
	if err != nil {
		return connectors.Verification{}, c.fail(op, err, "read role of %q", username)
	}
	login := "NOLOGIN"
	if canLogin {
		login = "LOGIN"
	}
	if _, managed := parseComment(comment); !managed {
		return connectors.Verification{Detail: fmt.Sprintf("role %q still exists (%s, not managed by provisio)", name, login)}, nil
	}
	return connectors.Verification{Detail: fmt.Sprintf("role %q still exists (%s)", name, login)}, nil
}
