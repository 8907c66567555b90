package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
	"github.com/provisio-dev/provisio/workflows"
)

// TestLeaverEndToEnd hires a person through the CLI, opens a real database
// session as them, then terminates them at once: every account must be
// locked, every entitlement gone and the session ended, as the
// applications' own tools see it, while the run waits for the retention
// before deleting anything.
func TestLeaverEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	employee := newEmployeeID(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	person := newTestPerson(employee, "Lea", "Ver")
	file := writePerson(t, person)
	out, err := runCLI(t, bin, cfg, "hire", "-f", file, "--wait")
	require.NoError(t, err, out)
	var hired workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, workflows.OnboardingID(employee), "").Get(ctx, &hired))
	username := hired.Username
	require.NotEmpty(t, username)
	offID := workflows.OffboardingID(employee)
	t.Cleanup(func() {
		// The run would wait 30 to 90 days before deleting: end it, and
		// delete what it kept.
		_ = c.TerminateWorkflow(context.Background(), offID, "", "e2e cleanup")
		for _, conn := range deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: username})
		}
	})
	held := map[string][]string{}
	for _, a := range hired.Accounts {
		held[a.Application] = a.Entitlements
	}
	require.Contains(t, held, "ldap")
	require.Contains(t, held, "postgres")
	require.Contains(t, held, "scim")

	// A live session as the person's role, opened before the termination.
	pgCfg, err := pgx.ParseConfig(cfg.Postgres.URL)
	require.NoError(t, err)
	pgCfg.User, pgCfg.Password = username, ""
	session, err := pgx.ConnectConfig(ctx, pgCfg)
	require.NoError(t, err, "the hired role can log in")
	defer session.Close(context.Background())
	var who string
	require.NoError(t, session.QueryRow(ctx, "SELECT current_user").Scan(&who))
	require.Equal(t, username, who)

	out, err = runCLI(t, bin, cfg, "terminate", employee, "--reason", "e2e leaver", "--wait")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Started offboarding of "+employee)
	assert.Contains(t, out, "access ends: now")
	assert.Contains(t, out, "Access removed for "+employee+" ("+username+")")

	// LDAP: the entry is locked for good (the ppolicy permanent lock).
	ldapOut := run(t, "ldapsearch", "-x", "-LLL", "-H", cfg.LDAP.URL, "-D", cfg.LDAP.BindDN, "-w", cfg.LDAP.Password,
		"-b", cfg.LDAP.PeopleDN, "(employeeNumber="+employee+")", "uid", "pwdAccountLockedTime")
	assert.Contains(t, ldapOut, "uid: "+username)
	assert.Contains(t, ldapOut, "pwdAccountLockedTime: 000001010000Z")

	// PostgreSQL: NOLOGIN, no group role left, and the session is gone.
	pgOut := run(t, "psql", cfg.Postgres.URL, "-Atc",
		"SELECT rolcanlogin FROM pg_roles WHERE rolname = '"+username+"'")
	assert.Equal(t, "f", strings.TrimSpace(pgOut), "the role can no longer log in")
	pgOut = run(t, "psql", cfg.Postgres.URL, "-Atc",
		"SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '"+username+"'")
	assert.Equal(t, "0", strings.TrimSpace(pgOut), "no role membership is left")
	err = session.QueryRow(ctx, "SELECT 1").Scan(new(int))
	assert.Error(t, err, "the session opened before the termination was ended")
	_, err = pgx.ConnectConfig(ctx, pgCfg)
	assert.Error(t, err, "a new login is refused")

	// Every application, through its connector: disabled, holding nothing,
	// still there (retention).
	for app := range held {
		got, err := deps.Activities.Connectors[app].GetAccount(ctx, connectors.AccountRequest{Username: username})
		require.NoError(t, err, "%s: the account is kept until its retention ends", app)
		assert.True(t, got.Disabled, "%s: disabled (SCIM: active=false)", app)
		assert.Empty(t, got.Entitlements, app)
	}

	// The run waits in retention, unflagged, one deletion date per
	// application from the policy.
	info, err := describeRun(ctx, c, offID)
	require.NoError(t, err)
	assert.Equal(t, workflows.StateRetention, info.state)
	assert.False(t, info.needsAttention)
	v, err := c.QueryWorkflow(ctx, offID, "", workflows.QueryState)
	require.NoError(t, err)
	var st workflows.OffboardingState
	require.NoError(t, v.Get(&st))
	assert.Equal(t, username, st.Username)
	retention := map[string]time.Duration{"ldap": 90 * policy.Day, "postgres": 30 * policy.Day, "scim": 30 * policy.Day}
	require.Len(t, st.Accounts, len(held))
	for _, a := range st.Accounts {
		assert.True(t, a.Disabled, a.Application)
		assert.False(t, a.Deleted, a.Application)
		assert.ElementsMatch(t, held[a.Application], a.Revoked, a.Application)
		assert.Equal(t, st.AccessEndsAt.Add(retention[a.Application]), a.DeleteAfter, a.Application)
		if a.Application == "postgres" {
			assert.GreaterOrEqual(t, a.SessionsEnded, 1, "the open session was counted")
		}
	}

	// The operator's view says the same.
	out, err = runCLI(t, bin, cfg, "status", employee)
	require.NoError(t, err, out)
	assert.Contains(t, out, offID)
	assert.Contains(t, out, "account in postgres   disabled (verified by read-back), revoked")
	assert.Contains(t, out, "deleted after")

	// HR can no longer retract it, and the finished hire was left as it was.
	out, err = runCLI(t, bin, cfg, "terminate", employee, "--retract")
	require.Error(t, err, out)
	assert.Contains(t, out, "refusing to retract")
	hire, err := describeRun(ctx, c, workflows.OnboardingID(employee))
	require.NoError(t, err)
	assert.Equal(t, "completed", hire.status)
	// Still open, in retention: replaying it proves a new worker can take
	// over the months-long wait.
	recordHistory(t, c, offID, "", "offboarding-kill-switch-v1")
}

// TestLeaverWinsOverAHireInFlight terminates a person whose onboarding
// still waits for their start date: the onboarding is cancelled and undoes
// its work, and the offboarding, after letting it settle (one minute, see
// workflows.Offboarding), finds nothing left: no access anywhere.
func TestLeaverWinsOverAHireInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a minute for the cancelled onboarding to settle")
	}
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	employee := newEmployeeID(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 30).Format(hr.DateLayout)
	out, err := runCLI(t, bin, cfg, "hire", "--employee-id", employee, "--given-name", "Early", "--family-name", "Ver"+strings.ToLower(employee[1:]),
		"--email", strings.ToLower(employee)+"@example.com", "--department", "Engineering", "--title", "Software Engineer",
		"--location", "Berlin", "--start-date", start)
	require.NoError(t, err, out)
	hireID := workflows.OnboardingID(employee)
	require.Eventually(t, func() bool {
		rs, err := describeRun(ctx, c, hireID)
		return err == nil && rs.state == workflows.StateWaitingStart
	}, time.Minute, 200*time.Millisecond, "the hire provisions ahead and waits for the start date")
	v, err := c.QueryWorkflow(ctx, hireID, "", workflows.QueryState)
	require.NoError(t, err)
	var hiring workflows.OnboardingState
	require.NoError(t, v.Get(&hiring))
	username := hiring.Username
	require.NotEmpty(t, username)
	t.Cleanup(func() {
		_ = c.TerminateWorkflow(context.Background(), workflows.OffboardingID(employee), "", "e2e cleanup")
		_ = c.TerminateWorkflow(context.Background(), hireID, "", "e2e cleanup")
		for _, conn := range deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: username})
		}
	})
	for _, a := range hiring.Accounts {
		_, err := deps.Activities.Connectors[a.Application].GetAccount(ctx, connectors.AccountRequest{Username: username})
		require.NoError(t, err, "%s: provisioned ahead of the start date", a.Application)
	}

	out, err = runCLI(t, bin, cfg, "terminate", employee, "--reason", "offer withdrawn", "--wait")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Access removed for "+employee)

	hire, err := describeRun(ctx, c, hireID)
	require.NoError(t, err)
	assert.Equal(t, "canceled", hire.status, "the leaver cancelled the hire")
	leave, err := describeRun(ctx, c, workflows.OffboardingID(employee))
	require.NoError(t, err)
	assert.Equal(t, "completed", leave.status, "nothing was left to keep for a retention")
	assert.False(t, leave.needsAttention)
	for app, conn := range deps.Activities.Connectors {
		_, err := conn.GetAccount(ctx, connectors.AccountRequest{Username: username})
		assert.True(t, connectors.IsNotFound(err), "%s: no account left, got %v", app, err)
	}
	ldapOut := run(t, "ldapsearch", "-x", "-LLL", "-H", cfg.LDAP.URL, "-D", cfg.LDAP.BindDN, "-w", cfg.LDAP.Password,
		"-b", cfg.LDAP.PeopleDN, "(employeeNumber="+employee+")", "uid")
	assert.Empty(t, strings.TrimSpace(ldapOut))
	pgOut := run(t, "psql", cfg.Postgres.URL, "-Atc", "SELECT count(*) FROM pg_roles WHERE rolname = '"+username+"'")
	assert.Equal(t, "0", strings.TrimSpace(pgOut))
	recordHistory(t, c, workflows.OffboardingID(employee), "", "offboarding-leaver-wins-v1")
}

// TestTerminateUnknownEmployee checks the CLI against the real username
// store: a person this system never saw is an error naming them.
func TestTerminateUnknownEmployee(t *testing.T) {
	cfg := testConfig(t)
	bin := buildStarter(t)
	employee := newEmployeeID(t)
	out, err := runCLI(t, bin, cfg, "terminate", employee)
	require.Error(t, err, out)
	assert.Contains(t, out, "unknown employee "+employee)
}

// runState is what describeRun reads of a workflow's latest run.
type runState struct {
	status, state  string
	needsAttention bool
}

// describeRun reads a run's status and search attributes from Temporal.
func describeRun(ctx context.Context, c client.Client, id string) (runState, error) {
	desc, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return runState{}, err
	}
	rs := runState{status: strings.ToLower(strings.TrimPrefix(desc.Status.String(), "WORKFLOW_EXECUTION_STATUS_"))}
	rs.state, _ = desc.TypedSearchAttributes.GetKeyword(workflows.AttrLifecycleState)
	rs.needsAttention, _ = desc.TypedSearchAttributes.GetBool(workflows.AttrNeedsAttention)
	return rs, nil
}

// TestContractorHireSchedulesTheLeaver: hiring a contractor with an end date
// leaves an offboarding scheduled for that date, visible like any other run.
func TestContractorHireSchedulesTheLeaver(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	employee := newEmployeeID(t)
	person := newTestPerson(employee, "Con", "Tractor")
	person.EmploymentType = hr.TypeContractor
	person.EndDate = hr.Date{Time: person.StartDate.AddDate(0, 2, 0)}

	out, err := runCLI(t, bin, cfg, "hire", "-f", writePerson(t, person), "--wait")
	require.NoError(t, err, out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, workflows.OnboardingID(employee), "").Get(ctx, &res))
	recordHistory(t, c, workflows.OnboardingID(employee), "", "onboarding-contractor-v1")
	t.Cleanup(func() {
		_ = c.CancelWorkflow(context.Background(), workflows.OffboardingID(employee), "")
		for _, conn := range deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: res.Username})
		}
	})

	info, err := describeRun(ctx, c, workflows.OffboardingID(employee))
	require.NoError(t, err, "an offboarding was scheduled")
	assert.Equal(t, "running", info.status)
	assert.Equal(t, workflows.StateScheduled, info.state)
	v, err := c.QueryWorkflow(ctx, workflows.OffboardingID(employee), "", workflows.QueryState)
	require.NoError(t, err)
	var st workflows.OffboardingState
	require.NoError(t, v.Get(&st))
	assert.Equal(t, person.EndDate.String(), st.LastDay)
	assert.Equal(t, person.EndDate.AddDate(0, 0, 1), st.AccessEndsAt.UTC(), "access ends when the last day ends")
}
