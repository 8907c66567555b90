package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/roster"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/internal/webhook"
	"github.com/provisio-dev/provisio/workflows"
)

// hostileStack is what the hostile-input test drives and inspects: the
// worker, the CLI, an in-process webhook, and direct connections to the
// applications, so what they hold is read with their own protocols rather
// than through the connectors under test.
type hostileStack struct {
	cfg        config.Config
	c          client.Client
	conns      map[string]connectors.Connector
	bin        string
	store      *pgxpool.Pool // the project's store (usernames, ledger, roster state)
	app        *pgxpool.Pool // the PostgreSQL the connector provisions
	webhookURL string
	// touched are the employee IDs whose runs and accounts cleanup removes.
	touched []string
}

// TestHostileHRRecords runs hostile HR records through every entry point
// on the real stack: `hire|move|terminate|request-access -f`, `sync --csv`
// and the webhook. Injection attempts (LDAP DN and filter metacharacters,
// SQL quotes, CEL expressions, shell metacharacters, HTML), control
// characters, invalid UTF-8, 10 MB fields, wrong JSON types, unknown and
// looping managers and duplicate rows must each be refused with an error
// naming the field, leaving no run, no username and no account behind; or,
// when they are legitimate data (apostrophes, commas, non-Latin letters,
// text that merely looks like code), be stored exactly as sent, with only
// the accounts the policy plans and nothing else.
func TestHostileHRRecords(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, cfg.StoreURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	appPool, err := pgxpool.New(ctx, cfg.Postgres.URL)
	require.NoError(t, err)
	t.Cleanup(appPool.Close)

	srv := httptest.NewServer(webhook.NewMux(&webhook.Handler{
		Secret:  []byte(webhookSecret),
		Starter: &events.Starter{Client: c, Config: cfg, People: roster.NewStore(st)},
		Replays: webhook.NewPGReplays(st),
	}))
	t.Cleanup(srv.Close)

	s := &hostileStack{cfg: cfg, c: c, conns: deps.Activities.Connectors, bin: bin, store: st, app: appPool, webhookURL: srv.URL}
	t.Cleanup(func() { s.cleanup(t) })

	t.Run("lookups", s.testLookups)
	t.Run("cli", s.testCLI)
	t.Run("webhook", s.testWebhook)
	t.Run("sync", s.testSync)
}

// hostileValues are strings that mean something to one of the systems a
// record passes through. None may ever act as anything but text.
var hostileValues = []string{
	"*", "*)(uid=*", ")(|(objectClass=*", "x,ou=admins,dc=example,dc=com", "cn=admin+uid=x", `\2a`, "#x",
	`x'; DROP ROLE postgres; --`, `x"; DROP ROLE postgres; --`, "pg_read_server_files", "public",
	`person.department == "Engineering" || true`, "$(id)", "`id`", "<script>alert(1)</script>",
}

// testLookups asks every connector for accounts named after hostile
// values: a wildcard or an injected filter must find nothing, never "the
// first account".
func (s *hostileStack) testLookups(t *testing.T) {
	ctx := context.Background()
	for name, conn := range s.conns {
		for _, v := range hostileValues {
			_, err := conn.GetAccount(ctx, connectors.AccountRequest{Username: v})
			require.Error(t, err, "%s found an account named %q", name, v)
			kind := connectors.KindOf(err)
			assert.Contains(t, []connectors.ErrorKind{connectors.KindNotFound, connectors.KindInvalid}, kind,
				"%s: GetAccount(%q): %v", name, v, err)
		}
	}
}

// personCase is one hostile change to an otherwise valid person record.
type personCase struct {
	name string
	// edit changes the typed record; over replaces JSON keys (wrong types,
	// unknown fields); raw rewrites the JSON bytes (invalid UTF-8).
	edit func(p *hr.Person)
	over map[string]any
	raw  func([]byte) []byte
	// field is what the refusal must name.
	field string
}

// refusedPersonCases are records every entry point must refuse; fresh
// returns an employee ID nobody knows (for the unknown manager).
func refusedPersonCases(fresh func() string) []personCase {
	text := func(f func(p *hr.Person, v string), v string) func(p *hr.Person) {
		return func(p *hr.Person) { f(p, v) }
	}
	given := func(p *hr.Person, v string) { p.GivenName = v }
	family := func(p *hr.Person, v string) { p.FamilyName = v }
	return []personCase{
		{name: "NUL in given_name", edit: text(given, "Ann\x00cn=admin"), field: "given_name"},
		{name: "LDIF injection in family_name", edit: text(family, "Doe\ndn: cn=admin,dc=example,dc=com\nchangetype: modify"), field: "family_name"},
		{name: "terminal escape in title", edit: func(p *hr.Person) { p.Title = "\x1b]0;owned\x07Engineer" }, field: "title"},
		{name: "DEL in department", edit: func(p *hr.Person) { p.Department = "Engineering\x7f" }, field: "department"},
		{name: "C1 control in location", edit: func(p *hr.Person) { p.Location = "Berlin\u0085" }, field: "location"},
		{name: "LDAP filter in email", edit: func(p *hr.Person) { p.Email = "*)(uid=*))(|(uid=*@example.com" }, field: "email"},
		{name: "SQL in email", edit: func(p *hr.Person) { p.Email = "x'; DROP TABLE usernames; --@example.com" }, field: "email"},
		{name: "shell in email", edit: func(p *hr.Person) { p.Email = "$(reboot)@example.com" }, field: "email"},
		{name: "DN in employee_id", edit: func(p *hr.Person) { p.EmployeeID += ",ou=admins" }, field: "employee_id"},
		{name: "SQL in manager_id", edit: func(p *hr.Person) { p.ManagerID = "E100001' OR '1'='1" }, field: "manager_id"},
		{name: "CEL in employment_type", edit: func(p *hr.Person) { p.EmploymentType = `employee" || true || "` }, field: "employment_type"},
		{name: "shell in status", edit: func(p *hr.Person) { p.Status = "active; rm -rf /" }, field: "status"},
		{name: "HTML in start_date", over: map[string]any{"start_date": "<script>alert(1)</script>"}, field: "start_date"},
		{name: "end before start", edit: func(p *hr.Person) { p.EndDate = hr.Date{Time: p.StartDate.AddDate(0, 0, -10)} }, field: "end_date"},
		{name: "own manager", edit: func(p *hr.Person) { p.ManagerID = p.EmployeeID }, field: "manager_id"},
		{name: "header injection in an attribute", edit: func(p *hr.Person) { p.Attributes = map[string]string{"cost_center": "42\r\nX-Admin: true"} }, field: "attributes.cost_center"},
		{name: "DN as an attribute key", edit: func(p *hr.Person) { p.Attributes = map[string]string{"cn=admin\x00": "1"} }, field: "attributes"},
		{name: "over-long given_name", edit: text(given, strings.Repeat("a", 300)), field: "given_name"},
		{name: "10 MB title", edit: func(p *hr.Person) { p.Title = strings.Repeat("A", 10<<20) }, field: "body"},
		{name: "number as given_name", over: map[string]any{"given_name": 42}, field: "given_name"},
		{name: "string as attributes", over: map[string]any{"attributes": "cost_center=42"}, field: "attributes"},
		{name: "number as start_date", over: map[string]any{"start_date": 20260105}, field: "start_date"},
		{name: "unknown field", over: map[string]any{"is_admin": true}, field: "is_admin"},
		{name: "Latin-1 byte in given_name", raw: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"given_name":"`), []byte("\"given_name\":\"\xe9"), 1)
		}, field: "body"},
		{name: "unknown manager", edit: func(p *hr.Person) { p.ManagerID = fresh() }, field: "manager_id"},
	}
}

// personJSON renders p with the case's changes.
func personJSON(t *testing.T, p hr.Person, pc personCase) []byte {
	t.Helper()
	if pc.edit != nil {
		pc.edit(&p)
	}
	data, err := json.Marshal(p)
	require.NoError(t, err)
	if pc.over != nil {
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		for k, v := range pc.over {
			m[k] = v
		}
		data, err = json.Marshal(m)
		require.NoError(t, err)
	}
	if pc.raw != nil {
		changed := pc.raw(data)
		require.NotEqual(t, data, changed, "the raw change applies")
		data = changed
	}
	return data
}

// personEvent wraps a person record in an event of type typ.
func personEvent(typ events.Type, person []byte) []byte {
	return []byte(`{"type":"` + string(typ) + `","person":` + string(person) + `}`)
}

// eventJSON renders an event given as fields.
func eventJSON(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	data, err := json.Marshal(fields)
	require.NoError(t, err)
	return data
}

// acceptedPeople are records that look hostile but are legitimate: they
// must be stored exactly as sent. The family names carry the employee
// ID's digits so each run derives usernames of its own.
func acceptedPeople(ids [3]string) []hr.Person {
	punct := newTestPerson(ids[0], "Seán-Zoë", "O'Brien, Jr. (Ñúñez)")
	punct.Title = `<img src=x onerror=alert(1)> Lead "Ops"; \ Engineer`
	punct.Location = "Zürich #1 + Co; $(id)"
	punct.Email = "o'brien+" + strings.ToLower(ids[0]) + "@example.com"

	nonLatin := newTestPerson(ids[1], "山田", "太郎")
	nonLatin.FamilyName = "太郎" // no Latin letters: the username falls back to the employee ID
	nonLatin.Title, nonLatin.Location = "エンジニア", "東京"

	// Text that is code elsewhere; the department is a CEL injection that
	// must not match the engineering rule: the person gets only what every
	// employee gets.
	code := newTestPerson(ids[2], "*)(uid=*", "x,ou=admins+cn=root")
	code.FamilyName += strings.ToLower(ids[2])
	code.Department = `Engineering" || person.department != "`
	code.Title = `'; DROP TABLE usernames; --`
	code.Location = "`touch /tmp/provisio-pwned`"
	return []hr.Person{punct, nonLatin, code}
}

// onlyBaseline reports whether p is the CEL-injection person, whose plan
// is only what every employee gets (ldap/employees).
func onlyBaseline(p hr.Person) bool { return strings.HasPrefix(p.Department, `Engineering"`) }

func (s *hostileStack) fresh(t *testing.T) string {
	t.Helper()
	id := newEmployeeID(t)
	s.touched = append(s.touched, id)
	return id
}

func (s *hostileStack) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCLI(t, s.bin, s.cfg, args...)
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(file, data, 0o600))
	return file
}

// testCLI runs the hostile records through `starter hire|move|terminate|
// request-access -f`.
func (s *hostileStack) testCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	refusedByCLI := func(t *testing.T, kind string, body []byte, field string) {
		t.Helper()
		out, err := s.cli(t, kind, "-f", writeFile(t, "event.json", body))
		require.Error(t, err, "%s -f must exit non-zero:\n%s", kind, out)
		assert.Contains(t, out, field+":", "the refusal names the field")
		assert.Contains(t, out, "nothing started")
		assert.NotContains(t, out, "Started")
	}

	// Refused hires: no run, no username, no account.
	for _, pc := range refusedPersonCases(func() string { return s.fresh(t) }) {
		t.Run("hire/"+pc.name, func(t *testing.T) {
			p := newTestPerson(s.fresh(t), "Ann", "Hostile")
			refusedByCLI(t, "hire", personEvent(events.TypeHire, personJSON(t, p, pc)), pc.field)
			s.assertNoTrace(t, ctx, p.EmployeeID, workflows.OnboardingID(p.EmployeeID))
		})
	}

	// Accepted hires, one from a bare person file, stored exactly as sent.
	people := acceptedPeople([3]string{s.fresh(t), s.fresh(t), s.fresh(t)})
	for i, p := range people {
		var file string
		if i == 0 {
			file = writePerson(t, p)
		} else {
			file = writeFile(t, "event.json", personEvent(events.TypeHire, personJSON(t, p, personCase{})))
		}
		out, err := s.cli(t, "hire", "-f", file)
		require.NoError(t, err, out)
		assert.Contains(t, out, "Started onboarding of "+p.EmployeeID)
	}
	results := s.awaitOnboardings(t, ctx, people)
	for _, p := range people {
		s.assertStoredExactly(t, ctx, p, results[p.EmployeeID])
	}

	// Refused moves of an onboarded person: the person's event sequencer
	// never starts and the accounts stay as they were.
	mover := people[0]
	for _, pc := range refusedPersonCases(func() string { return s.fresh(t) }) {
		t.Run("move/"+pc.name, func(t *testing.T) {
			refusedByCLI(t, "move", personEvent(events.TypeMove, personJSON(t, mover, pc)), pc.field)
		})
	}
	s.assertNotFound(t, ctx, workflows.PersonEventsID(mover.EmployeeID))
	s.assertStoredExactly(t, ctx, mover, results[mover.EmployeeID])

	// An accepted move whose new title is hostile text: the move runs and
	// changes nothing the policy does not plan.
	moved := mover
	moved.Title = `Senior "Engineer"; DROP TABLE ledger; -- <b>`
	out, err := s.cli(t, "move", "-f", writeFile(t, "move.json", personEvent(events.TypeMove, personJSON(t, moved, personCase{}))))
	require.NoError(t, err, out)
	var mres workflows.MoverResult
	require.NoError(t, waitRun(ctx, s.c, workflows.MoverID(moved.EmployeeID, workflows.MoverChangeKey(moved)), &mres), "mover of %s", moved.EmployeeID)
	s.assertStoredExactly(t, ctx, moved, results[moved.EmployeeID])

	// Refused terminations and temporary-access requests.
	known := people[1].EmployeeID
	stranger := s.fresh(t)
	for _, tc := range []struct {
		name, kind string
		fields     map[string]any
		field      string
		notStarted string
	}{
		{"filter in employee_id", "terminate", map[string]any{"employee_id": "E1)(uid=*"}, "employee_id", ""},
		{"escape in reason", "terminate", map[string]any{"employee_id": known, "reason": "bye\x1b[2J"}, "reason", workflows.OffboardingID(known)},
		{"NUL in reason", "terminate", map[string]any{"employee_id": known, "reason": "bye\x00"}, "reason", workflows.OffboardingID(known)},
		{"long reason", "terminate", map[string]any{"employee_id": known, "reason": strings.Repeat("x", events.MaxTextLen+1)}, "reason", workflows.OffboardingID(known)},
		{"HTML as effective", "terminate", map[string]any{"employee_id": known, "effective": "<b>tomorrow</b>"}, "effective", workflows.OffboardingID(known)},
		{"number as effective", "terminate", map[string]any{"employee_id": known, "effective": 20261231}, "effective", workflows.OffboardingID(known)},
		{"a person in a terminate", "terminate", map[string]any{"employee_id": known, "person": map[string]any{"employee_id": known}}, "person", workflows.OffboardingID(known)},
		{"unknown employee", "terminate", map[string]any{"employee_id": stranger}, "employee_id", workflows.OffboardingID(stranger)},
		{"filter in entitlement", "request-access", map[string]any{"employee_id": known, "entitlement": "ldap/*)(cn=*"}, "entitlement", ""},
		{"SQL in entitlement", "request-access", map[string]any{"employee_id": known, "entitlement": "postgres/x; DROP ROLE postgres"}, "entitlement", ""},
		{"path in entitlement", "request-access", map[string]any{"employee_id": known, "entitlement": "../../etc/passwd"}, "entitlement", ""},
		{"negative duration", "request-access", map[string]any{"employee_id": known, "entitlement": "ldap/vpn", "duration": "-1h"}, "duration", workflows.TemporaryAccessID(known, "ldap", "vpn")},
		{"huge duration", "request-access", map[string]any{"employee_id": known, "entitlement": "ldap/vpn", "duration": "99999999999999d"}, "duration", workflows.TemporaryAccessID(known, "ldap", "vpn")},
		{"NUL in justification", "request-access", map[string]any{"employee_id": known, "entitlement": "ldap/vpn", "justification": "x\x00"}, "justification", workflows.TemporaryAccessID(known, "ldap", "vpn")},
		{"SQL in requested_by", "request-access", map[string]any{"employee_id": known, "entitlement": "ldap/vpn", "requested_by": "E1 OR 1=1"}, "requested_by", workflows.TemporaryAccessID(known, "ldap", "vpn")},
		{"unknown employee", "request-access", map[string]any{"employee_id": stranger, "entitlement": "ldap/vpn"}, "employee_id", workflows.TemporaryAccessID(stranger, "ldap", "vpn")},
		{"wrong event type", "request-access", map[string]any{"type": "terminate", "employee_id": known}, "type", workflows.OffboardingID(known)},
	} {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			refusedByCLI(t, tc.kind, eventJSON(t, tc.fields), tc.field)
			if tc.notStarted != "" {
				s.assertNotFound(t, ctx, tc.notStarted)
			}
		})
	}

	// A well-formed request for a powerful role the policy does not offer:
	// the run refuses it and nothing is granted.
	const app, ent = "postgres", "pg_read_server_files"
	out, err = s.cli(t, "request-access", "-f", writeFile(t, "request.json", eventJSON(t, map[string]any{
		"employee_id": known, "entitlement": app + "/" + ent, "justification": `'; GRANT pg_read_server_files TO PUBLIC; --`,
	})))
	if err == nil {
		var res workflows.TemporaryAccessResult
		runErr := waitRun(ctx, s.c, workflows.TemporaryAccessID(known, app, ent), &res)
		require.Error(t, runErr, "a request for %s/%s must not succeed", app, ent)
		t.Logf("request for %s/%s: %v", app, ent, runErr)
	} else {
		assert.Contains(t, out, "entitlement", out)
	}
	pgName := ""
	for _, a := range results[known].Accounts {
		if a.Application == app {
			pgName = a.Username
		}
	}
	require.NotEmpty(t, pgName, "the engineer has a PostgreSQL role")
	var member bool
	require.NoError(t, s.app.QueryRow(ctx, `SELECT pg_has_role($1, $2, 'MEMBER')`, pgName, ent).Scan(&member))
	assert.False(t, member, "%s is not a member of %s", pgName, ent)
	s.assertStoredExactly(t, ctx, people[1], results[known])

	// A termination with hostile text in its reason is carried out: the
	// person's accounts are disabled, nothing else changes.
	leaver := people[2]
	out, err = s.cli(t, "terminate", "-f", writeFile(t, "leaver.json", eventJSON(t, map[string]any{
		"employee_id": leaver.EmployeeID, "reason": "'; DROP TABLE ledger; --\n<script>alert(1)</script>",
	})))
	require.NoError(t, err, out)
	require.NoError(t, waitState(ctx, s.c, workflows.OffboardingID(leaver.EmployeeID), workflows.StateRetention))
	for _, a := range results[leaver.EmployeeID].Accounts {
		got, err := s.conns[a.Application].GetAccount(ctx, connectors.AccountRequest{Username: a.Username})
		require.NoError(t, err, a.Application)
		assert.True(t, got.Disabled, "%s account of the leaver is disabled", a.Application)
	}
}

// testWebhook posts the hostile records, signed, to the webhook handler.
func (s *hostileStack) testWebhook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	refusedByWebhook := func(t *testing.T, body []byte, field string) {
		t.Helper()
		status, got := sign(body).post(t, s.webhookURL)
		if field == "body" && len(body) > events.MaxEventBytes {
			assert.Equal(t, http.StatusRequestEntityTooLarge, status, "%v", got)
			assert.Contains(t, got["error"], "body:")
			return
		}
		require.Equal(t, http.StatusBadRequest, status, "%v", got)
		assert.Contains(t, fieldsOf(got), field, "the refusal names the field: %v", got)
		assert.Contains(t, got["error"], "nothing started")
	}

	for _, pc := range refusedPersonCases(func() string { return s.fresh(t) }) {
		t.Run("hire/"+pc.name, func(t *testing.T) {
			p := newTestPerson(s.fresh(t), "Ann", "Hostile")
			refusedByWebhook(t, personEvent(events.TypeHire, personJSON(t, p, pc)), pc.field)
			s.assertNoTrace(t, ctx, p.EmployeeID, workflows.OnboardingID(p.EmployeeID))
		})
	}

	people := acceptedPeople([3]string{s.fresh(t), s.fresh(t), s.fresh(t)})
	for _, p := range people {
		status, got := sign(personEvent(events.TypeHire, personJSON(t, p, personCase{}))).post(t, s.webhookURL)
		require.Equal(t, http.StatusAccepted, status, "%v", got)
		assert.Equal(t, string(events.OutcomeStarted), got["outcome"])
	}
	results := s.awaitOnboardings(t, ctx, people)
	for _, p := range people {
		s.assertStoredExactly(t, ctx, p, results[p.EmployeeID])
	}

	mover := people[1]
	for _, pc := range refusedPersonCases(func() string { return s.fresh(t) }) {
		t.Run("move/"+pc.name, func(t *testing.T) {
			refusedByWebhook(t, personEvent(events.TypeMove, personJSON(t, mover, pc)), pc.field)
		})
	}
	s.assertNotFound(t, ctx, workflows.PersonEventsID(mover.EmployeeID))
	s.assertStoredExactly(t, ctx, mover, results[mover.EmployeeID])

	for _, tc := range []struct {
		name   string
		fields map[string]any
		field  string
	}{
		{"filter in employee_id", map[string]any{"type": "terminate", "employee_id": "*)(uid=*"}, "employee_id"},
		{"escape in reason", map[string]any{"type": "terminate", "employee_id": mover.EmployeeID, "reason": "\x1b[31mbye"}, "reason"},
		{"CEL as type", map[string]any{"type": `terminate" || true`, "employee_id": mover.EmployeeID}, "type"},
		{"SQL in entitlement", map[string]any{"type": "request-access", "employee_id": mover.EmployeeID, "entitlement": "postgres/'; DROP ROLE x; --"}, "entitlement"},
	} {
		t.Run("event/"+tc.name, func(t *testing.T) {
			refusedByWebhook(t, eventJSON(t, tc.fields), tc.field)
		})
	}
	s.assertNotFound(t, ctx, workflows.OffboardingID(mover.EmployeeID))
}

// fieldsOf lists the field names of a webhook refusal.
func fieldsOf(body map[string]any) []string {
	var out []string
	list, _ := body["fields"].([]any)
	for _, f := range list {
		if m, ok := f.(map[string]any); ok {
			name, _ := m["field"].(string)
			out = append(out, name)
		}
	}
	return out
}

// testSync syncs one roster export full of hostile rows: the good ones are
// hired exactly as written, each bad one is listed with its line and the
// field, and leaves no trace. A second export that is not UTF-8 is
// refused whole.
func (s *hostileStack) testSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	source := fmt.Sprintf("e2e-hostile-%d", time.Now().UnixNano()%1e9)
	t.Cleanup(func() {
		if _, err := s.store.Exec(context.Background(), `DELETE FROM roster_state WHERE source = $1`, source); err != nil {
			t.Logf("cleanup: roster state of %s: %v", source, err)
		}
	})

	accepted := acceptedPeople([3]string{s.fresh(t), s.fresh(t), s.fresh(t)})
	dup := newTestPerson(s.fresh(t), "Dee", "First")
	dupAgain := dup
	dupAgain.GivenName, dupAgain.Email = "Mallory", "mallory@example.com"
	loopA, loopB := newTestPerson(s.fresh(t), "Lou", "Loop"), newTestPerson(s.fresh(t), "Lee", "Loop")
	loopA.ManagerID, loopB.ManagerID = loopB.EmployeeID, loopA.EmployeeID
	orphan := newTestPerson(s.fresh(t), "Una", "Known")
	orphan.ManagerID = s.fresh(t)

	// Each row: its CSV fields, and for a refused row the text its
	// rejection must hold (the field) and the employee ID it must leave
	// untouched.
	type csvRow struct {
		rec     []string
		reason  string
		subject string
	}
	var rows []csvRow
	for _, p := range append(slices.Clone(accepted), dup) {
		rows = append(rows, csvRow{rec: records([]hr.Person{p})[0]})
	}
	rows = append(rows,
		csvRow{records([]hr.Person{dupAgain})[0], "employee_id " + dup.EmployeeID + " repeats line", ""},
		csvRow{records([]hr.Person{loopA})[0], "manager_id: manager loop", loopA.EmployeeID},
		csvRow{records([]hr.Person{loopB})[0], "manager_id: manager loop", loopB.EmployeeID},
		csvRow{records([]hr.Person{orphan})[0], "manager_id: unknown manager", orphan.EmployeeID},
	)
	bad := func(edit func(p *hr.Person), reason string) csvRow {
		p := newTestPerson(s.fresh(t), "Ann", "Hostile")
		id := p.EmployeeID
		edit(&p)
		return csvRow{records([]hr.Person{p})[0], reason, id}
	}
	rows = append(rows,
		bad(func(p *hr.Person) { p.GivenName = "Ann\x00" }, "given_name: contains a control character"),
		bad(func(p *hr.Person) { p.FamilyName = "Doe\ndn: cn=admin,dc=example,dc=com" }, "family_name: contains a control character"),
		bad(func(p *hr.Person) { p.Title = "\x1b[2JEngineer" }, "title: contains a control character"),
		bad(func(p *hr.Person) { p.Email = "*)(uid=*@example.com" }, "email: is not an e-mail address"),
		bad(func(p *hr.Person) { p.Email = "x'; DROP TABLE usernames; --@example.com" }, "email: is not an e-mail address"),
		bad(func(p *hr.Person) { p.ManagerID = "E1' OR '1'='1" }, "manager_id: must be E followed by 6 digits"),
		bad(func(p *hr.Person) { p.EmploymentType = `employee" || true || "` }, "employment_type: must be"),
		bad(func(p *hr.Person) { p.Status = "active; rm -rf /" }, "status: must be"),
		bad(func(p *hr.Person) { p.Department = strings.Repeat("D", 10<<20) }, "row is larger than"),
		bad(func(p *hr.Person) { p.GivenName = strings.Repeat("g", 300) }, "given_name: is longer than"),
	)
	badDate := newTestPerson(s.fresh(t), "Ann", "Hostile")
	rec := records([]hr.Person{badDate})[0]
	rec[9] = "<script>alert(1)</script>"
	rows = append(rows, csvRow{rec, "start_date: want YYYY-MM-DD", badDate.EmployeeID})
	injected := newTestPerson(s.fresh(t), "Ann", "Hostile")
	rec = records([]hr.Person{injected})[0]
	rec[0] = injected.EmployeeID + ")(uid=*"
	rows = append(rows, csvRow{rec, "employee_id: must be E followed by 6 digits", injected.EmployeeID})

	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	require.NoError(t, w.Write(hr.RosterHeader))
	w.Flush()
	lineOf := map[int]csvRow{}
	for _, r := range rows {
		lineOf[bytes.Count(buf.Bytes(), []byte("\n"))+1] = r
		require.NoError(t, w.Write(r.rec))
		w.Flush()
	}
	require.NoError(t, w.Error())
	file := writeFile(t, "hostile.csv", buf.Bytes())

	out, err := s.cli(t, "sync", "--csv", file, "--source", source, "--output", "json")
	require.Error(t, err, "rejected rows make the sync exit non-zero:\n%s", out)
	var sum syncSummary
	i := strings.Index(out, "{\n")
	require.GreaterOrEqual(t, i, 0, "no JSON summary in:\n%.2000s", out)
	require.NoError(t, json.NewDecoder(strings.NewReader(out[i:])).Decode(&sum), "%.2000s", out)
	assert.Equal(t, len(accepted)+1, sum.Started["joiner"], "the accepted rows and the first of the duplicates are hired")
	assert.Empty(t, sum.Failed)

	rejected := map[int]string{}
	for _, r := range sum.Rejected {
		rejected[r.Line] = r.Reason
		assert.Less(t, len(r.Reason), 4096, "a rejection does not echo a huge row")
	}
	for ln, r := range lineOf {
		if r.reason == "" {
			assert.NotContains(t, rejected, ln, "line %d (%s) is accepted", ln, r.rec[0])
			continue
		}
		if assert.Contains(t, rejected, ln, "line %d must be rejected: %s", ln, r.reason) {
			assert.Contains(t, rejected[ln], r.reason, "line %d", ln)
		}
	}
	assert.Len(t, sum.Rejected, len(rows)-len(accepted)-1)

	results := s.awaitOnboardings(t, ctx, append(slices.Clone(accepted), dup))
	for _, p := range append(slices.Clone(accepted), dup) {
		s.assertStoredExactly(t, ctx, p, results[p.EmployeeID])
	}
	state, err := roster.NewStore(s.store).Load(ctx, source)
	require.NoError(t, err)
	assert.Equal(t, dup.GivenName, state[dup.EmployeeID].Person.GivenName, "the duplicate row changed nothing")
	for _, r := range lineOf {
		if r.subject == "" {
			continue
		}
		assert.NotContains(t, state, r.subject, "a rejected row is not stored")
		s.assertNoTrace(t, ctx, r.subject, workflows.OnboardingID(r.subject))
	}

	// An export that is not UTF-8 (Latin-1 "é") is refused whole; its
	// otherwise good row starts nothing.
	latin := newTestPerson(s.fresh(t), "Ren", "Latin")
	buf.Reset()
	w = csv.NewWriter(&buf)
	require.NoError(t, w.Write(hr.RosterHeader))
	require.NoError(t, w.Write(records([]hr.Person{latin})[0]))
	w.Flush()
	data := bytes.Replace(buf.Bytes(), []byte("Ren"), []byte("Ren\xe9"), 1)
	out, err = s.cli(t, "sync", "--csv", writeFile(t, "latin1.csv", data), "--source", source)
	require.Error(t, err, out)
	assert.Contains(t, out, "not UTF-8")
	assert.Contains(t, out, "nothing started")
	s.assertNoTrace(t, ctx, latin.EmployeeID, workflows.OnboardingID(latin.EmployeeID))
}

// awaitOnboardings waits for the people's onboardings to complete and
// returns their results.
func (s *hostileStack) awaitOnboardings(t *testing.T, ctx context.Context, people []hr.Person) map[string]workflows.OnboardingResult {
	t.Helper()
	out := map[string]workflows.OnboardingResult{}
	for _, p := range people {
		var res workflows.OnboardingResult
		require.NoError(t, waitRun(ctx, s.c, workflows.OnboardingID(p.EmployeeID), &res), "onboarding of %s", p.EmployeeID)
		out[p.EmployeeID] = res
	}
	return out
}

// assertStoredExactly checks that every application holds exactly the
// accounts the onboarding reported for p (one each, none elsewhere), with
// p's names and e-mail byte for byte, and that the ledger and the username
// reservations agree.
func (s *hostileStack) assertStoredExactly(t *testing.T, ctx context.Context, p hr.Person, res workflows.OnboardingResult) {
	t.Helper()
	require.NotEmpty(t, res.Username, p.EmployeeID)
	assert.Regexp(t, `^[a-z0-9][a-z0-9.-]*$`, res.Username, "usernames are plain, whatever the name")
	planned := map[string]workflows.AccountResult{}
	for _, a := range res.Accounts {
		planned[a.Application] = a
	}
	if onlyBaseline(p) {
		require.Len(t, res.Accounts, 1, "the CEL text in the department matches no rule: %+v", res.Accounts)
		assert.Equal(t, "ldap", res.Accounts[0].Application)
		assert.Equal(t, []string{"employees"}, res.Accounts[0].Entitlements)
	} else {
		assert.Len(t, planned, 3, "an engineer has accounts in every application: %+v", res.Accounts)
	}

	held := s.heldByApplication(t, ctx, p.EmployeeID)
	for _, app := range []string{"ldap", "postgres", "scim"} {
		accts := held[app]
		a, ok := planned[app]
		if !ok {
			assert.Empty(t, accts, "%s holds no account of %s", app, p.EmployeeID)
			continue
		}
		if !assert.Len(t, accts, 1, "%s holds exactly one account of %s", app, p.EmployeeID) {
			continue
		}
		got := accts[0]
		assert.Equal(t, a.Username, got.Username, app)
		assert.Equal(t, p.GivenName, got.GivenName, app)
		assert.Equal(t, p.FamilyName, got.FamilyName, app)
		assert.Equal(t, p.Email, got.Email, app)
	}

	hs, err := ledger.New(s.store).Holdings(ctx, p.EmployeeID)
	require.NoError(t, err)
	var ledgerApps []string
	for _, h := range hs {
		if h.Entitlement == "" {
			ledgerApps = append(ledgerApps, h.Application)
			assert.Equal(t, planned[h.Application].Username, h.Account, "ledger account in %s", h.Application)
		}
	}
	sort.Strings(ledgerApps)
	assert.Equal(t, slices.Sorted(maps.Keys(planned)), ledgerApps, "the ledger records the planned accounts only")
	for app, a := range planned {
		_, ents := ledgerView(hs, app)
		assert.Equal(t, slices.Sorted(slices.Values(a.Entitlements)), ents, "the ledger holds the planned entitlements in %s, nothing more", app)
	}

	var n int
	require.NoError(t, s.store.QueryRow(ctx, `SELECT count(*) FROM usernames WHERE employee_id = $1`, p.EmployeeID).Scan(&n))
	assert.Equal(t, 1, n, "one username reserved for %s", p.EmployeeID)
}

// assertNoTrace checks that nothing exists for a refused person: no run
// of the given workflow IDs, no reserved username, no account in any
// application.
func (s *hostileStack) assertNoTrace(t *testing.T, ctx context.Context, employeeID string, workflowIDs ...string) {
	t.Helper()
	for _, id := range workflowIDs {
		s.assertNotFound(t, ctx, id)
	}
	var n int
	require.NoError(t, s.store.QueryRow(ctx, `SELECT count(*) FROM usernames WHERE employee_id = $1`, employeeID).Scan(&n))
	assert.Zero(t, n, "no username reserved for %s", employeeID)
	for app, accts := range s.heldByApplication(t, ctx, employeeID) {
		assert.Empty(t, accts, "%s holds no account of %s", app, employeeID)
	}
}

func (s *hostileStack) assertNotFound(t *testing.T, ctx context.Context, workflowID string) {
	t.Helper()
	_, err := s.c.DescribeWorkflow(ctx, workflowID, "")
	var nf *serviceerror.NotFound
	assert.True(t, errors.As(err, &nf), "no run %s was started: %v", workflowID, err)
}

// heldAccount is an account as an application itself stores it.
type heldAccount struct {
	Username, GivenName, FamilyName, Email string
}

// heldByApplication reads, with each application's own protocol, every
// account that carries employeeID: LDAP entries with that employeeNumber,
// PostgreSQL roles whose provisio marker names it, SCIM users with that
// enterprise employeeNumber.
func (s *hostileStack) heldByApplication(t *testing.T, ctx context.Context, employeeID string) map[string][]heldAccount {
	t.Helper()
	out := map[string][]heldAccount{}

	conn, err := goldap.DialURL(s.cfg.LDAP.URL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(s.cfg.LDAP.BindDN, s.cfg.LDAP.Password))
	sr, err := conn.Search(goldap.NewSearchRequest(s.cfg.LDAP.PeopleDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(employeeNumber="+goldap.EscapeFilter(employeeID)+")", []string{"uid", "givenName", "sn", "mail"}, nil))
	require.NoError(t, err)
	for _, e := range sr.Entries {
		out["ldap"] = append(out["ldap"], heldAccount{e.GetAttributeValue("uid"), e.GetAttributeValue("givenName"), e.GetAttributeValue("sn"), e.GetAttributeValue("mail")})
	}

	rows, err := s.app.Query(ctx, `SELECT r.rolname, d.description FROM pg_roles r
		JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
		WHERE starts_with(d.description, 'provisio:') AND strpos(d.description, $1) > 0`, `"employee_id":`+jsonString(employeeID))
	require.NoError(t, err)
	for rows.Next() {
		var role, comment string
		require.NoError(t, rows.Scan(&role, &comment))
		var m struct {
			EmployeeID string `json:"employee_id"`
			GivenName  string `json:"given_name"`
			FamilyName string `json:"family_name"`
			Email      string `json:"email"`
		}
		require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(comment, "provisio:")), &m), comment)
		if m.EmployeeID == employeeID {
			out["postgres"] = append(out["postgres"], heldAccount{role, m.GivenName, m.FamilyName, m.Email})
		}
	}
	require.NoError(t, rows.Err())

	filter := `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq ` + jsonString(employeeID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.SCIM.URL+"/Users?filter="+url.QueryEscape(filter), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.cfg.SCIM.Token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "SCIM filter on employeeNumber")
	var list struct {
		Resources []struct {
			UserName string `json:"userName"`
			Name     struct {
				GivenName  string `json:"givenName"`
				FamilyName string `json:"familyName"`
			} `json:"name"`
			Emails []struct {
				Value string `json:"value"`
			} `json:"emails"`
			Enterprise struct {
				EmployeeNumber string `json:"employeeNumber"`
			} `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
		} `json:"Resources"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	for _, u := range list.Resources {
		require.Equal(t, employeeID, u.Enterprise.EmployeeNumber, "the SCIM filter matched another person")
		email := ""
		if len(u.Emails) > 0 {
			email = u.Emails[0].Value
		}
		out["scim"] = append(out["scim"], heldAccount{u.UserName, u.Name.GivenName, u.Name.FamilyName, email})
	}
	return out
}

// cleanup ends every run of the people the test touched and deletes their
// accounts.
func (s *hostileStack) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, id := range s.touched {
		resp, err := s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: "EmployeeId = '" + id + "' AND ExecutionStatus = 'Running'",
		})
		if err == nil {
			for _, e := range resp.GetExecutions() {
				_ = s.c.TerminateWorkflow(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), "e2e cleanup")
			}
		}
		_ = s.c.TerminateWorkflow(ctx, workflows.PersonEventsID(id), "", "e2e cleanup")
		var name string
		if err := s.store.QueryRow(ctx, `SELECT username FROM usernames WHERE employee_id = $1`, id).Scan(&name); err != nil {
			continue
		}
		for _, conn := range s.conns {
			_, _ = conn.DeleteAccount(ctx, connectors.AccountRequest{Username: name})
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
