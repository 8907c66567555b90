package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/workflows"
)

// peopleFunc is an events.People answering with a function.
type peopleFunc func(id string) (bool, error)

func (f peopleFunc) Known(_ context.Context, id string) (bool, error) { return f(id) }

// staticPeople is an openPeople that needs no store.
func staticPeople(known func(id string) (bool, error)) openPeople {
	return func(context.Context, config.Config) (events.People, func(), error) {
		return peopleFunc(known), func() {}, nil
	}
}

// knownPeople knows the manager E100008 and the employee E100002.
var knownPeople = staticPeople(func(id string) (bool, error) { return id == "E100008" || id == "E100002", nil })

// The trigger commands with their people injected.
func hireCmd(o *rootOptions, p openPeople) *cobra.Command {
	return newHireCmdWith(o, &hireOptions{people: p})
}

func moveCmd(o *rootOptions, p openPeople) *cobra.Command {
	return newMoveCmdWith(o, &moveOptions{person: hireOptions{people: p}})
}

func terminateCmd(o *rootOptions, p openPeople) *cobra.Command {
	return newTerminateCmdWith(o, &terminateOptions{people: p})
}

func requestAccessCmd(o *rootOptions, p openPeople) *cobra.Command {
	return newRequestAccessCmdWith(o, &requestAccessOptions{people: p})
}

// writeFile writes content to a file of its own and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "event.json")
	require.NoError(t, os.WriteFile(f, []byte(content), 0o600))
	return f
}

// personJSON is a valid person record with the given fields replaced
// (a field set to "-" is dropped).
func personJSON(id string, repl ...string) string {
	fields := map[string]string{
		"employee_id": `"` + id + `"`, "given_name": `"Ada"`, "family_name": `"Lovelace"`, "email": `"ada@example.com"`,
		"department": `"Sales"`, "title": `"Rep"`, "location": `"Berlin"`, "employment_type": `"employee"`,
		"start_date": `"2026-02-01"`, "status": `"active"`,
	}
	for i := 0; i+1 < len(repl); i += 2 {
		if repl[i+1] == "-" {
			delete(fields, repl[i])
			continue
		}
		fields[repl[i]] = repl[i+1]
	}
	var parts []string
	for k, v := range fields {
		parts = append(parts, `"`+k+`":`+v)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// unknownServer is a Temporal client on which nobody was ever onboarded
// and nothing may start.
func unknownServer() *mocks.Client {
	c := &mocks.Client{}
	c.On("DescribeWorkflow", mock.Anything, mock.Anything, "").Return(nil, serviceerror.NewNotFound("not found"))
	c.On("Close").Return()
	return c
}

func assertNothingStarted(t *testing.T, c *mocks.Client) {
	t.Helper()
	c.AssertNotCalled(t, "ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything)
	c.AssertNotCalled(t, "UpdateWithStartWorkflow", mock.Anything, mock.Anything)
	c.AssertNotCalled(t, "SignalWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything)
	c.AssertNotCalled(t, "CancelWorkflow", mock.Anything, mock.Anything, mock.Anything)
}

// TestTriggersRefuseInvalidInput covers every validation error of every
// trigger command, from flags and from JSON files: each names the field,
// fails the command, and starts nothing.
func TestTriggersRefuseInvalidInput(t *testing.T) {
	type cmdFunc = func(*rootOptions, openPeople) *cobra.Command
	p := func(repl ...string) string { return writeFile(t, personJSON("E100001", repl...)) }
	flags := func(extra ...string) []string {
		return append([]string{"--employee-id", "E100001", "--given-name", "Ada", "--family-name", "Lovelace",
			"--email", "ada@example.com", "--department", "Sales", "--title", "Rep", "--location", "Berlin",
			"--start-date", "2026-02-01"}, extra...)
	}
	moveFlags := func(extra ...string) []string {
		args := flags(extra...)
		args[1] = "E100002"
		return args
	}
	cases := []struct {
		name string
		cmd  cmdFunc
		args []string
		want string
	}{
		// hire, flags
		{"hire: missing email", hireCmd, []string{"--employee-id", "E100001", "--given-name", "Ada", "--family-name", "L",
			"--department", "Sales", "--title", "Rep", "--location", "Berlin"}, "email (--email): is required"},
		{"hire: bad employee ID", hireCmd, append(flags(), "--employee-id", "x1"), `employee_id (--employee-id): must be E followed by 6 digits, got "x1"`},
		{"hire: bad manager ID", hireCmd, flags("--manager-id", "boss"), `manager_id (--manager-id): must be E followed by 6 digits, got "boss"`},
		{"hire: own manager", hireCmd, flags("--manager-id", "E100001"), "manager_id (--manager-id): a person cannot be their own manager"},
		{"hire: unknown manager", hireCmd, flags("--manager-id", "E199999"), "manager_id (--manager-id): unknown manager E199999"},
		{"hire: bad type", hireCmd, flags("--type", "intern"), `employment_type (--type): must be "employee" or "contractor", got "intern"`},
		{"hire: bad start date", hireCmd, flags("--start-date", "1.2.2026"), `--start-date: want YYYY-MM-DD, got "1.2.2026"`},
		{"hire: bad end date", hireCmd, flags("--end-date", "soon"), `--end-date: want YYYY-MM-DD, got "soon"`},
		{"hire: end before start", hireCmd, flags("--end-date", "2026-01-31"), "end_date (--end-date): 2026-01-31 is before start_date 2026-02-01"},
		{"hire: control character", hireCmd, flags("--title", "Rep\x07"), "title (--title): contains a control character"},
		{"hire: roster without employee", hireCmd, []string{"--roster", "../deployments/demo/roster.csv"}, "--roster needs --employee-id"},
		{"hire: not in roster", hireCmd, []string{"--roster", "../deployments/demo/roster.csv", "--employee-id", "E999997"}, "not in the roster"},
		{"hire: file and roster", hireCmd, []string{"-f", p(), "--roster", "r.csv"}, "[file roster] were all set"},
		{"hire: arguments", hireCmd, []string{"E100001"}, "unknown command"},
		// hire, JSON
		{"hire -f: missing email", hireCmd, []string{"-f", p("email", "-")}, "email: is required"},
		{"hire -f: two bad fields", hireCmd, []string{"-f", p("email", `""`, "location", `" "`)}, "nothing started:\n  email: is required\n  location: is required"},
		{"hire -f: terminated", hireCmd, []string{"-f", p("status", `"terminated"`)}, "status: employee E100001 has status terminated: refusing to hire"},
		{"hire -f: bad status", hireCmd, []string{"-f", p("status", `"gone"`)}, `status: must be "active" or "terminated", got "gone"`},
		{"hire -f: unknown field", hireCmd, []string{"-f", p("salary", "1")}, "salary: unknown field"},
		{"hire -f: wrong JSON type", hireCmd, []string{"-f", p("title", "42")}, "title: want a JSON string, got number"},
		{"hire -f: malformed", hireCmd, []string{"-f", writeFile(t, `{"employee_id": "E100001",`)}, "body: malformed JSON"},
		{"hire -f: two objects", hireCmd, []string{"-f", writeFile(t, personJSON("E100001")+personJSON("E100001"))}, "more than one JSON value"},
		{"hire -f: bad date", hireCmd, []string{"-f", p("start_date", `"2026-02-30"`)}, `start_date: want YYYY-MM-DD, got "2026-02-30"`},
		{"hire -f: end before start", hireCmd, []string{"-f", p("end_date", `"2026-01-01"`)}, "end_date: 2026-01-01 is before start_date 2026-02-01"},
		{"hire -f: unknown manager", hireCmd, []string{"-f", p("manager_id", `"E199999"`)}, "manager_id: unknown manager E199999"},
		{"hire -f: event without person", hireCmd, []string{"-f", writeFile(t, `{"type":"hire"}`)}, "person: is required"},
		{"hire -f: event with stray field", hireCmd, []string{"-f", writeFile(t, `{"type":"hire","reason":"x","person":`+personJSON("E100001")+`}`)},
			"reason: is not part of a hire event"},
		{"hire -f: event of another type", hireCmd, []string{"-f", writeFile(t, `{"type":"terminate","employee_id":"E100001"}`)},
			"type: this file holds a \"terminate\" event; `starter hire -f` takes \"hire\" events"},
		{"hire -f: missing file", hireCmd, []string{"-f", "/nonexistent/person.json"}, "no such file"},
		// move
		{"move: unknown employee", moveCmd, flags(), "employee_id (--employee-id): unknown employee E100001"},
		{"move: missing title", moveCmd, moveFlags("--title", ""), "title (--title): is required"},
		{"move: unknown manager", moveCmd, moveFlags("--manager-id", "E199999"), "manager_id (--manager-id): unknown manager E199999"},
		{"move: end before start", moveCmd, moveFlags("--end-date", "2025-01-01"), "end_date (--end-date): 2025-01-01 is before"},
		{"move -f: unknown employee", moveCmd, []string{"-f", p()}, "employee_id: unknown employee E100001"},
		{"move -f: terminated", moveCmd, []string{"-f", p("status", `"terminated"`)}, "refusing to move"},
		{"move -f: unknown manager", moveCmd, []string{"-f", writeFile(t, personJSON("E100002", "manager_id", `"E199999"`))}, "manager_id: unknown manager E199999"},
		{"move -f: hire event", moveCmd, []string{"-f", writeFile(t, `{"type":"hire","person":`+personJSON("E100002")+`}`)}, `this file holds a "hire" event`},
		// terminate, arguments and flags
		{"terminate: no employee", terminateCmd, nil, "accepts 1 arg"},
		{"terminate: two employees", terminateCmd, []string{"E100001", "E100002"}, "accepts at most 1 arg"},
		{"terminate: bad employee ID", terminateCmd, []string{"x)(uid=*"}, `employee_id (EMPLOYEE_ID): must be an employee ID, E followed by 6 digits, got "x)(uid=*"`},
		{"terminate: bad date", terminateCmd, []string{"E100002", "--effective", "31.12.2026"}, `--effective: want YYYY-MM-DD, got "31.12.2026"`},
		{"terminate: long reason", terminateCmd, []string{"E100002", "--reason", strings.Repeat("x", 1001)}, "reason (--reason): has 1001 bytes; at most 1000 are kept"},
		{"terminate: unknown employee", terminateCmd, []string{"E100003"}, "employee_id (EMPLOYEE_ID): unknown employee E100003"},
		{"terminate: wait for a future day", terminateCmd, []string{"E100002", "--wait", "--effective", "2999-12-31"}, "--wait: access ends only when 2999-12-31 ends"},
		{"terminate: retract with a date", terminateCmd, []string{"E100002", "--retract", "--effective", "2026-12-31"}, "[effective retract] were all set"},
		{"terminate: retract, bad employee", terminateCmd, []string{"E1", "--retract"}, "employee_id (EMPLOYEE_ID): must be an employee ID"},
		// terminate, JSON
		{"terminate -f: unknown employee", terminateCmd, []string{"-f", writeFile(t, `{"type":"terminate","employee_id":"E100003"}`)}, "employee_id: unknown employee E100003"},
		{"terminate -f: no employee", terminateCmd, []string{"-f", writeFile(t, `{"reason":"x"}`)}, "employee_id: is required"},
		{"terminate -f: bad date", terminateCmd, []string{"-f", writeFile(t, `{"employee_id":"E100002","effective":"tomorrow"}`)}, `effective: want YYYY-MM-DD, got "tomorrow"`},
		{"terminate -f: a person", terminateCmd, []string{"-f", writeFile(t, `{"employee_id":"E100002","person":`+personJSON("E100002")+`}`)},
			"person: is not part of a terminate event"},
		{"terminate -f: unknown field", terminateCmd, []string{"-f", writeFile(t, `{"employee_id":"E100002","when":"now"}`)}, "when: unknown field"},
		{"terminate -f: malformed", terminateCmd, []string{"-f", writeFile(t, `{"employee_id":"E100002"`)}, "body: malformed JSON"},
		{"terminate -f: other type", terminateCmd, []string{"-f", writeFile(t, `{"type":"move","person":`+personJSON("E100002")+`}`)}, `this file holds a "move" event`},
		{"terminate -f: and an argument", terminateCmd, []string{"E100002", "-f", writeFile(t, `{"employee_id":"E100002"}`)}, "give EMPLOYEE_ID or -f FILE, not both"},
		{"terminate -f: and a flag", terminateCmd, []string{"-f", writeFile(t, `{"employee_id":"E100002"}`), "--effective", "2026-12-31"}, "[effective file] were all set"},
		// request-access, arguments and flags
		{"request-access: bad employee", requestAccessCmd, []string{"X1", "postgres/prod_admin"}, `employee_id (EMPLOYEE_ID): must be an employee ID, E followed by 6 digits, got "X1"`},
		{"request-access: no slash", requestAccessCmd, []string{"E100002", "prod_admin"}, "entitlement (APPLICATION/ENTITLEMENT): want APPLICATION/ENTITLEMENT"},
		{"request-access: bad characters", requestAccessCmd, []string{"E100002", "postgres/prod admin"}, "letters, digits"},
		{"request-access: bad duration", requestAccessCmd, []string{"E100002", "postgres/prod_admin", "--duration", "ten days"},
			`duration (--duration): "ten days" is not a duration: use e.g. 30d, 8h or 1d12h`},
		{"request-access: zero duration", requestAccessCmd, []string{"E100002", "postgres/prod_admin", "--duration", "0d"}, `duration (--duration): "0d": must be positive`},
		{"request-access: negative duration", requestAccessCmd, []string{"E100002", "postgres/prod_admin", "--duration", "-1d"}, "duration (--duration)"},
		{"request-access: bad requester", requestAccessCmd, []string{"E100002", "postgres/prod_admin", "--as", "bob"}, `requested_by (--as): must be an employee ID, E followed by 6 digits, got "bob"`},
		{"request-access: long justification", requestAccessCmd, []string{"E100002", "postgres/prod_admin", "--justification", strings.Repeat("j", 1001)},
			"justification (--justification): has 1001 bytes"},
		{"request-access: unknown employee", requestAccessCmd, []string{"E100003", "postgres/prod_admin"}, "employee_id (EMPLOYEE_ID): unknown employee E100003"},
		{"request-access: missing arguments", requestAccessCmd, []string{"E100002"}, "accepts 2 arg(s)"},
		// request-access, JSON
		{"request-access -f: no entitlement", requestAccessCmd, []string{"-f", writeFile(t, `{"type":"request-access","employee_id":"E100002"}`)}, "entitlement: is required"},
		{"request-access -f: bad duration", requestAccessCmd, []string{"-f", writeFile(t, `{"employee_id":"E100002","entitlement":"ldap/vpn","duration":"1w"}`)}, `duration: "1w" is not a duration`},
		{"request-access -f: bad requester", requestAccessCmd, []string{"-f", writeFile(t, `{"employee_id":"E100002","entitlement":"ldap/vpn","requested_by":"me"}`)}, "requested_by: must be an employee ID"},
		{"request-access -f: unknown employee", requestAccessCmd, []string{"-f", writeFile(t, `{"employee_id":"E100003","entitlement":"ldap/vpn"}`)}, "employee_id: unknown employee E100003"},
		{"request-access -f: stray field", requestAccessCmd, []string{"-f", writeFile(t, `{"employee_id":"E100002","entitlement":"ldap/vpn","effective":"2026-01-01"}`)},
			"effective: is not part of a request-access event"},
		{"request-access -f: unknown field", requestAccessCmd, []string{"-f", writeFile(t, `{"employee_id":"E100002","entitlement":"ldap/vpn","role":"admin"}`)}, "role: unknown field"},
		{"request-access -f: wrong JSON type", requestAccessCmd, []string{"-f", writeFile(t, `{"employee_id":"E100002","entitlement":["ldap/vpn"]}`)}, "entitlement: want a JSON string, got array"},
		{"request-access -f: and arguments", requestAccessCmd, []string{"E100002", "ldap/vpn", "-f", writeFile(t, `{}`)}, "not both"},
		{"request-access -f: and a flag", requestAccessCmd, []string{"-f", writeFile(t, `{}`), "--as", "E100002"}, "[as file] were all set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := unknownServer()
			out, errOut, err := runWithClient(t, c, func(o *rootOptions) *cobra.Command { return tc.cmd(o, knownPeople) }, tc.args...)
			require.Error(t, err, "must be refused: %s", out)
			assert.Contains(t, err.Error(), tc.want)
			assertNothingStarted(t, c)
			assert.Empty(t, out, "nothing printed as if started")
			assert.Empty(t, errOut)
		})
	}
}

func TestHireStartsOnboarding(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"flags", func(*testing.T) []string {
			return []string{"--employee-id", "E100001", "--given-name", "Ada", "--family-name", "Lovelace", "--email", "ada@example.com",
				"--department", "Sales", "--title", "Rep", "--location", "Berlin", "--start-date", "2026-02-01", "--manager-id", "E100008"}
		}},
		{"person file", func(t *testing.T) []string {
			return []string{"-f", writeFile(t, personJSON("E100001", "status", "-", "manager_id", `"E100008"`))}
		}},
		{"event file", func(t *testing.T) []string {
			return []string{"-f", writeFile(t, `{"type":"hire","person":`+personJSON("E100001", "manager_id", `"E100008"`)+`}`)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &mocks.Client{}
			run := &mocks.WorkflowRun{}
			run.On("GetRunID").Return("run-1")
			var opts client.StartWorkflowOptions
			var in workflows.OnboardingInput
			c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
				opts = a.Get(1).(client.StartWorkflowOptions)
				in = a.Get(3).(workflows.OnboardingInput)
			}).Return(run, nil)
			c.On("Close").Return()
			out, _, err := runWithClient(t, c, func(o *rootOptions) *cobra.Command { return hireCmd(o, knownPeople) }, tc.args(t)...)
			require.NoError(t, err)
			assert.Equal(t, "onboarding-E100001", opts.ID)
			assert.Equal(t, "E100008", in.Person.ManagerID)
			assert.Equal(t, "active", in.Person.Status)
			assert.Equal(t, "Started onboarding of E100001\n  workflow: onboarding-E100001\n  run:      run-1\n"+
				"  watch:    /namespaces//workflows/onboarding-E100001/run-1/history\n", out)
		})
	}
}

func TestHireAgainReportsTheExistingRun(t *testing.T) {
	c := &mocks.Client{}
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "run-0"))
	c.On("DescribeWorkflow", mock.Anything, "onboarding-E100001", "").Return(&client.WorkflowExecutionDescription{
		WorkflowExecutionMetadata: client.WorkflowExecutionMetadata{
			WorkflowExecution: workflow.Execution{ID: "onboarding-E100001", RunID: "run-0"},
			Status:            enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
		}}, nil)
	c.On("Close").Return()
	out, _, err := runWithClient(t, c, func(o *rootOptions) *cobra.Command { return hireCmd(o, knownPeople) }, "-f", writeFile(t, personJSON("E100001")))
	require.NoError(t, err)
	assert.Contains(t, out, "Hire of E100001 is already done (completed); nothing new started.\n  workflow: onboarding-E100001\n")
}

// TestStoreErrorIsNotAnUnknownPerson checks that trouble with the people
// store fails the command as trouble, not as a refusal.
func TestStoreErrorIsNotAnUnknownPerson(t *testing.T) {
	c := unknownServer()
	down := staticPeople(func(string) (bool, error) { return false, assert.AnError })
	_, _, err := runWithClient(t, c, func(o *rootOptions) *cobra.Command { return hireCmd(o, down) },
		"-f", writeFile(t, personJSON("E100001", "manager_id", `"E100008"`)))
	require.Error(t, err)
	assert.False(t, events.IsInvalid(err))
	assert.Contains(t, err.Error(), "cannot tell whether E100008 is known")
	assertNothingStarted(t, c)
}

// TestHireFromARosterKnowsItsManagers: the manager of a person taken from
// --roster is known from that same export.
func TestHireFromARosterKnowsItsManagers(t *testing.T) {
	c := &mocks.Client{}
	run := &mocks.WorkflowRun{}
	run.On("GetRunID").Return("run-1")
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(run, nil)
	c.On("Close").Return()
	nobody := staticPeople(func(string) (bool, error) { return false, nil })
	// E100006's manager E100004 is in the demo roster, and nowhere else.
	out, _, err := runWithClient(t, c, func(o *rootOptions) *cobra.Command { return hireCmd(o, nobody) },
		"--roster", "../deployments/demo/roster.csv", "--employee-id", "E100006")
	require.NoError(t, err)
	assert.Contains(t, out, "Started onboarding of E100006")

	// From a file, the same manager is unknown to nobody-knows-anyone.
	c = unknownServer()
	_, _, err = runWithClient(t, c, func(o *rootOptions) *cobra.Command { return hireCmd(o, nobody) },
		"-f", writeFile(t, personJSON("E100006", "manager_id", `"E100004"`)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "manager_id: unknown manager E100004")
	assertNothingStarted(t, c)
}
