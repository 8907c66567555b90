package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/postgres"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/testenv"
)

func qi(name string) string { return pgx.Identifier{name}.Sanitize() }

// fixture holds two real PostgreSQL connectors on the same cluster, "pg-a"
// and "pg-b", told apart by their role prefixes (stem+"a_", stem+"b_"), and
// an admin connection that checks their effects from outside. Every role
// whose name starts with stem is dropped when the test ends.
type fixture struct {
	t     *testing.T
	stem  string
	admin *pgx.Conn
	acts  *activities.Activities
	env   *testsuite.TestActivityEnvironment
	group string // a group role both connectors can grant
	// ledger records what the activities write to the access ledger.
	ledger *fakeLedger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	url := testenv.PGURL(t)
	ctx := testenv.Context(t)
	admin, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	f := &fixture{t: t, stem: "pvact" + testenv.RandomLetters(6), admin: admin}
	t.Cleanup(func() {
		f.dropStemRoles()
		_ = admin.Close(context.Background())
	})
	conns := map[string]connectors.Connector{}
	for _, app := range []string{"pg-a", "pg-b"} {
		c, err := postgres.New(ctx, postgres.Config{URL: url, Name: app, RolePrefix: f.prefix(app), MaxConns: 2})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		conns[app] = c
	}
	f.group = f.stem + "grp"
	f.exec("CREATE ROLE " + qi(f.group) + " NOLOGIN")
	f.ledger = &fakeLedger{}
	f.acts = &activities.Activities{Connectors: conns, Ledger: f.ledger}
	var suite testsuite.WorkflowTestSuite
	f.env = suite.NewTestActivityEnvironment()
	f.env.RegisterActivity(f.acts)
	return f
}

// prefix is the role prefix of an application's connector.
func (f *fixture) prefix(app string) string {
	return f.stem + app[len(app)-1:] + "_"
}

func (f *fixture) exec(sql string) {
	f.t.Helper()
	_, err := f.admin.Exec(testenv.Context(f.t), sql)
	require.NoError(f.t, err, sql)
}

// role reads a role: whether it exists and whether it can log in.
func (f *fixture) role(name string) (exists, canLogin bool) {
	f.t.Helper()
	err := f.admin.QueryRow(testenv.Context(f.t), `SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, name).Scan(&canLogin)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false
	}
	require.NoError(f.t, err)
	return true, canLogin
}

// member reports whether role is a direct member of group.
func (f *fixture) member(role, group string) bool {
	f.t.Helper()
	var n int
	require.NoError(f.t, f.admin.QueryRow(testenv.Context(f.t), `SELECT count(*) FROM pg_auth_members m
		JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
		WHERE r.rolname = $1 AND g.rolname = $2`, role, group).Scan(&n))
	return n > 0
}

func (f *fixture) dropStemRoles() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := f.admin.Query(ctx, `SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1)`, f.stem)
	if err != nil {
		f.t.Logf("cleanup: %v", err)
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Logf("cleanup: %v", err)
		return
	}
	for _, n := range names {
		for _, sql := range []string{"REASSIGN OWNED BY " + qi(n) + " TO CURRENT_USER", "DROP OWNED BY " + qi(n), "DROP ROLE " + qi(n)} {
			if _, err := f.admin.Exec(ctx, sql); err != nil {
				f.t.Logf("cleanup %q: %v", n, err)
			}
		}
	}
}

// run executes one activity and decodes its result into out.
func run[T any](f *fixture, fn any, in any) (T, error) {
	f.t.Helper()
	var out T
	val, err := f.env.ExecuteActivity(fn, in)
	if err != nil {
		return out, err
	}
	require.NoError(f.t, val.Get(&out))
	return out, nil
}

// errType returns the ApplicationError type of err, failing if it is not one.
func errType(t *testing.T, err error) string {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "not an ApplicationError: %T %v", err, err)
	return appErr.Type()
}

func account(username string) connectors.Account {
	return connectors.Account{Username: username, EmployeeID: "E100001", GivenName: "Ada",
		FamilyName: "Lovelace", DisplayName: "Ada Lovelace", Email: "ada@example.com"}
}

// TestLifecycleGoesToTheNamedConnector walks one account through every
// connector activity in application pg-b and checks, from outside, that
// each step changed pg-b's role and never pg-a's, and that each step that
// changed something (and only those) was recorded in the ledger.
func TestLifecycleGoesToTheNamedConnector(t *testing.T) {
	f := newFixture(t)
	a := f.acts
	roleB, roleA := f.prefix("pg-b")+"ada", f.prefix("pg-a")+"ada"
	acct := activities.AccountInput{App: "pg-b", Username: "ada", Audit: joiner}
	ent := activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: f.group, Audit: joiner}

	steps := []struct {
		name     string
		do       func() (any, error)
		want     any
		recorded ledger.Action // "" when nothing is recorded
		check    func(t *testing.T)
	}{
		{"ensure creates", func() (any, error) {
			return run[connectors.EnsureAccountResponse](f, a.EnsureAccount, activities.EnsureAccountInput{App: "pg-b", Account: account("ada"), Audit: joiner})
		}, connectors.EnsureAccountResponse{Created: true}, ledger.ActionCreated, func(t *testing.T) {
			exists, login := f.role(roleB)
			assert.True(t, exists && login, "pg-b role missing or disabled")
		}},
		{"ensure again changes nothing", func() (any, error) {
			return run[connectors.EnsureAccountResponse](f, a.EnsureAccount, activities.EnsureAccountInput{App: "pg-b", Account: account("ada"), Audit: joiner})
		}, connectors.EnsureAccountResponse{}, "", nil},
		{"ensure with new attributes updates, recording nothing", func() (any, error) {
			changed := account("ada")
			changed.Email = "ada@new.example.com"
			return run[connectors.EnsureAccountResponse](f, a.EnsureAccount, activities.EnsureAccountInput{App: "pg-b", Account: changed, Audit: joiner})
		}, connectors.EnsureAccountResponse{Updated: true}, "", nil},
		{"grant", func() (any, error) {
			return run[connectors.EntitlementResponse](f, a.GrantEntitlement, ent)
		}, connectors.EntitlementResponse{Changed: true}, ledger.ActionGranted, func(t *testing.T) {
			assert.True(t, f.member(roleB, f.group))
		}},
		{"grant again", func() (any, error) {
			return run[connectors.EntitlementResponse](f, a.GrantEntitlement, ent)
		}, connectors.EntitlementResponse{}, "", nil},
		{"revoke", func() (any, error) {
			return run[connectors.EntitlementResponse](f, a.RevokeEntitlement, ent)
		}, connectors.EntitlementResponse{Changed: true}, ledger.ActionRevoked, func(t *testing.T) {
			assert.False(t, f.member(roleB, f.group))
		}},
		{"revoke again", func() (any, error) {
			return run[connectors.EntitlementResponse](f, a.RevokeEntitlement, ent)
		}, connectors.EntitlementResponse{}, "", nil},
		{"disable", func() (any, error) {
			return run[connectors.DisableResponse](f, a.DisableAccount, acct)
		}, connectors.DisableResponse{Changed: true}, ledger.ActionDisabled, func(t *testing.T) {
			exists, login := f.role(roleB)
			assert.True(t, exists)
			assert.False(t, login, "disabled role can still log in")
		}},
		{"disable again changes nothing and is recorded: the read-back is evidence", func() (any, error) {
			return run[connectors.DisableResponse](f, a.DisableAccount, acct)
		}, connectors.DisableResponse{}, ledger.ActionDisabled, nil},
		{"enable", func() (any, error) {
			return run[connectors.EnableResponse](f, a.EnableAccount, acct)
		}, connectors.EnableResponse{Changed: true}, ledger.ActionEnabled, func(t *testing.T) {
			_, login := f.role(roleB)
			assert.True(t, login)
		}},
		{"delete", func() (any, error) {
			return run[connectors.DeleteResponse](f, a.DeleteAccount, acct)
		}, connectors.DeleteResponse{Deleted: true}, ledger.ActionDeleted, func(t *testing.T) {
			exists, _ := f.role(roleB)
			assert.False(t, exists)
		}},
		{"delete again", func() (any, error) {
			return run[connectors.DeleteResponse](f, a.DeleteAccount, acct)
		}, connectors.DeleteResponse{}, "", nil},
	}
	for _, s := range steps {
		before := len(f.ledger.all())
		got, err := s.do()
		require.NoError(t, err, s.name)
		assert.Equal(t, s.want, got, s.name)
		if s.check != nil {
			s.check(t)
		}
		exists, _ := f.role(roleA)
		require.False(t, exists, "%s: reached pg-a", s.name)

		entries := f.ledger.all()
		if s.recorded == "" {
			assert.Len(t, entries, before, "%s: recorded a change that did not happen", s.name)
			continue
		}
		require.Len(t, entries, before+1, "%s: change not recorded", s.name)
		e := entries[before]
		assert.Equal(t, s.recorded, e.Action, s.name)
		assert.Equal(t, "pg-b", e.Application, s.name)
		assert.Equal(t, "ada", e.Account, s.name)
		if e.Action.OnEntitlement() {
			assert.Equal(t, f.group, e.Entitlement, s.name)
		} else {
			assert.Empty(t, e.Entitlement, s.name)
		}
		assert.Equal(t, joiner.EmployeeID, e.EmployeeID, s.name)
		assert.Equal(t, joiner.Justification, e.Justification, s.name)
		assert.Equal(t, joiner.PolicyVersion, e.PolicyVersion, s.name)
		assert.NotEmpty(t, e.WorkflowID, s.name)
		assert.NotEmpty(t, e.RunID, s.name)
		assert.NotEmpty(t, e.ActivityID, s.name)
		if e.Action.IsRevocation() {
			// Verified after it was requested (the activity's schedule
			// time, as the audit gives none), by reading it back.
			assert.False(t, e.RequestedAt.IsZero(), s.name)
			assert.False(t, e.VerifiedAt.Before(e.RequestedAt), "%s: verified %s before requested %s", s.name, e.VerifiedAt, e.RequestedAt)
			assert.Equal(t, ledger.VerifiedReadBack, e.VerifiedBy, s.name)
		} else {
			assert.True(t, e.RequestedAt.IsZero() && e.VerifiedAt.IsZero() && e.VerifiedBy == "", "%s: only revocations are verified", s.name)
		}
	}
}

// TestUnknownApplication checks that every connector activity refuses an
// application the worker has no connector for, before touching anything.
func TestUnknownApplication(t *testing.T) {
	f := newFixture(t)
	a := f.acts
	tests := []struct {
		name string
		fn   any
		in   any
	}{
		{"EnsureAccount", a.EnsureAccount, activities.EnsureAccountInput{App: "nope", Account: account("ada")}},
		{"GrantEntitlement", a.GrantEntitlement, activities.EntitlementInput{App: "nope", Username: "ada", Entitlement: f.group}},
		{"RevokeEntitlement", a.RevokeEntitlement, activities.EntitlementInput{App: "nope", Username: "ada", Entitlement: f.group}},
		{"DisableAccount", a.DisableAccount, activities.AccountInput{App: "nope", Username: "ada"}},
		{"EnableAccount", a.EnableAccount, activities.AccountInput{App: "nope", Username: "ada"}},
		{"DeleteAccount", a.DeleteAccount, activities.AccountInput{App: "nope", Username: "ada"}},
		{"empty app", a.DeleteAccount, activities.AccountInput{App: "", Username: "ada"}},
		{"case differs", a.DeleteAccount, activities.AccountInput{App: "PG-B", Username: "ada"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.env.ExecuteActivity(tt.fn, tt.in)
			assert.Equal(t, string(connectors.KindInvalid), errType(t, err))
			assert.Contains(t, err.Error(), "no connector for application")
		})
	}
}

// TestConnectorErrorsKeepTheirKind checks that a connector failure reaches
// the workflow as an ApplicationError typed by its ErrorKind.
func TestConnectorErrorsKeepTheirKind(t *testing.T) {
	f := newFixture(t)
	a := f.acts
	// An account that exists in pg-b, and a role pg-b did not create.
	_, err := run[connectors.EnsureAccountResponse](f, a.EnsureAccount, activities.EnsureAccountInput{App: "pg-b", Account: account("ada"), Audit: joiner})
	require.NoError(t, err)
	f.exec("CREATE ROLE " + qi(f.prefix("pg-b")+"handmade") + " LOGIN")

	tests := []struct {
		name     string
		fn       any
		in       any
		wantKind connectors.ErrorKind
		wantMsg  string
	}{
		{"grant to a missing account", a.GrantEntitlement,
			activities.EntitlementInput{App: "pg-b", Username: "ghost", Entitlement: f.group, Audit: joiner}, connectors.KindNotFound, `account "ghost" does not exist`},
		{"grant of a missing entitlement", a.GrantEntitlement,
			activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: f.stem + "nosuchgroup", Audit: joiner}, connectors.KindNotFound, "does not exist"},
		{"grant of a predefined role", a.GrantEntitlement,
			activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: "pg_read_server_files", Audit: joiner}, connectors.KindPermission, "predefined"},
		{"invalid username", a.EnsureAccount,
			activities.EnsureAccountInput{App: "pg-b", Account: account("x\ny"), Audit: joiner}, connectors.KindInvalid, "control character"},
		{"username with NUL", a.EnsureAccount,
			activities.EnsureAccountInput{App: "pg-b", Account: account("x\x00y"), Audit: joiner}, connectors.KindInvalid, "NUL"},
		{"empty username", a.DisableAccount,
			activities.AccountInput{App: "pg-b", Username: "", Audit: joiner}, connectors.KindInvalid, "empty"},
		{"account without employee ID", a.EnsureAccount,
			activities.EnsureAccountInput{App: "pg-b", Account: connectors.Account{Username: "noid"}, Audit: joiner}, connectors.KindInvalid, "employee ID"},
		{"role provisio did not create", a.EnsureAccount,
			activities.EnsureAccountInput{App: "pg-b", Account: account("handmade"), Audit: joiner}, connectors.KindConflict, "not created by provisio"},
		{"disable a missing account", a.DisableAccount,
			activities.AccountInput{App: "pg-b", Username: "ghost", Audit: joiner}, connectors.KindNotFound, "does not exist"},
		{"enable a missing account", a.EnableAccount,
			activities.AccountInput{App: "pg-b", Username: "ghost", Audit: joiner}, connectors.KindNotFound, "does not exist"},
		{"account that lives in the other application", a.GrantEntitlement,
			activities.EntitlementInput{App: "pg-a", Username: "ada", Entitlement: f.group, Audit: joiner}, connectors.KindNotFound, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.env.ExecuteActivity(tt.fn, tt.in)
			assert.Equal(t, string(tt.wantKind), errType(t, err))
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
	exists, _ := f.role(f.prefix("pg-b") + "ghost")
	assert.False(t, exists)
	assert.False(t, f.member(f.prefix("pg-b")+"ada", f.group))
}

func TestRevokeFromMissingAccountSucceeds(t *testing.T) {
	f := newFixture(t)
	got, err := run[connectors.EntitlementResponse](f, f.acts.RevokeEntitlement,
		activities.EntitlementInput{App: "pg-b", Username: "ghost", Entitlement: f.group, Audit: joiner})
	require.NoError(t, err)
	assert.False(t, got.Changed)

	// Only NotFound is forgiven: a malformed request still fails.
	_, err = f.env.ExecuteActivity(f.acts.RevokeEntitlement,
		activities.EntitlementInput{App: "pg-b", Username: "x\ny", Entitlement: f.group, Audit: joiner})
	assert.Equal(t, string(connectors.KindInvalid), errType(t, err))
}

// reserver is a UsernameReserver that records its calls.
type reserver struct {
	calls []string
	err   error
}

func (r *reserver) Reserve(_ context.Context, employeeID, given, family string) (string, error) {
	r.calls = append(r.calls, employeeID)
	if r.err != nil {
		return "", r.err
	}
	return "ada.lovelace", nil
}

func TestReserveUsername(t *testing.T) {
	tests := []struct {
		name     string
		id       string
		err      error
		want     string
		wantType string
		called   bool
	}{
		{name: "valid", id: "E100001", want: "ada.lovelace", called: true},
		{name: "empty id", id: "", wantType: string(connectors.KindInvalid)},
		{name: "five digits", id: "E12345", wantType: string(connectors.KindInvalid)},
		{name: "filter injection", id: "x)(uid=*", wantType: string(connectors.KindInvalid)},
		{name: "trailing newline", id: "E100001\n", wantType: string(connectors.KindInvalid)},
		{name: "store outage is retryable", id: "E100001", err: errors.New("connection reset"), wantType: string(connectors.KindUnavailable), called: true},
		{name: "store conflict keeps its kind", id: "E100001",
			err: connectors.Errorf(connectors.KindConflict, "usernames", "Reserve", nil, "taken"), wantType: string(connectors.KindConflict), called: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &reserver{err: tt.err}
			a := &activities.Activities{Usernames: r}
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			val, err := env.ExecuteActivity(a.ReserveUsername, activities.ReserveUsernameInput{EmployeeID: tt.id, GivenName: "Ada", FamilyName: "Lovelace"})
			assert.Equal(t, tt.called, len(r.calls) == 1, "reserver calls: %v", r.calls)
			if tt.wantType != "" {
				assert.Equal(t, tt.wantType, errType(t, err))
				return
			}
			require.NoError(t, err)
			var got activities.ReserveUsernameResult
			require.NoError(t, val.Get(&got))
			assert.Equal(t, tt.want, got.Username)
		})
	}
}

// planner is a Planner that returns a fixed plan and records its calls.
type planner struct {
	res   activities.PlanAccessResult
	err   error
	calls int
}

func (p *planner) PlanAccess(context.Context, hr.Person) (activities.PlanAccessResult, error) {
	p.calls++
	return p.res, p.err
}

func validPerson() hr.Person {
	start, _ := hr.ParseDate("2026-03-01")
	return hr.Person{EmployeeID: "E100001", GivenName: "Ada", FamilyName: "Lovelace",
		Email: "ada@example.com", Department: "Engineering", Title: "Engineer", Location: "London",
		EmploymentType: hr.TypeEmployee, StartDate: start, Status: hr.StatusActive}
}

func TestPlanAccess(t *testing.T) {
	f := newFixture(t)
	good := activities.PlanAccessResult{
		PolicyVersion: "v7",
		Applications: []activities.AppAccess{
			{Application: "pg-a", Entitlements: []string{f.group}},
			{Application: "pg-b"},
		},
		Reasons: map[string][]string{"pg-a/" + f.group: {"rule engineers"}},
	}
	bad := good
	bad.Applications = append([]activities.AppAccess{}, good.Applications...)
	bad.Applications = append(bad.Applications, activities.AppAccess{Application: "jira", Entitlements: []string{"users"}})
	badApproval := good
	badApproval.Approvals = []activities.ApprovalItem{{Application: "jira", Entitlement: "admins"}}
	invalidPerson := validPerson()
	invalidPerson.EmployeeID = "x)(uid=*"

	tests := []struct {
		name     string
		person   hr.Person
		plan     activities.PlanAccessResult
		planErr  error
		wantType string
		wantMsg  string
		called   bool
	}{
		{name: "valid", person: validPerson(), plan: good, called: true},
		{name: "invalid person", person: invalidPerson, plan: good, wantType: string(connectors.KindInvalid), wantMsg: "employee_id"},
		{name: "empty person", person: hr.Person{}, plan: good, wantType: string(connectors.KindInvalid), wantMsg: "start_date"},
		{name: "app without a connector", person: validPerson(), plan: bad, wantType: string(connectors.KindInvalid), wantMsg: `"jira"`, called: true},
		{name: "approval in an app without a connector", person: validPerson(), plan: badApproval, wantType: string(connectors.KindInvalid), wantMsg: `"jira"`, called: true},
		{name: "policy error keeps its kind", person: validPerson(),
			planErr: connectors.Errorf(connectors.KindInvalid, "policy", "Plan", nil, "no rule matches"), wantType: string(connectors.KindInvalid), wantMsg: "no rule matches", called: true},
		{name: "unclassified policy error is retried", person: validPerson(),
			planErr: errors.New("policy file unreadable"), wantType: string(connectors.KindUnavailable), wantMsg: "policy file unreadable", called: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &planner{res: tt.plan, err: tt.planErr}
			a := &activities.Activities{Connectors: f.acts.Connectors, Planner: p}
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			val, err := env.ExecuteActivity(a.PlanAccess, activities.PlanAccessInput{Person: tt.person})
			assert.Equal(t, tt.called, p.calls == 1)
			if tt.wantType != "" {
				assert.Equal(t, tt.wantType, errType(t, err))
				assert.Contains(t, err.Error(), tt.wantMsg)
				return
			}
			require.NoError(t, err)
			var got activities.PlanAccessResult
			require.NoError(t, val.Get(&got))
			assert.Equal(t, tt.plan, got)
		})
	}
}
