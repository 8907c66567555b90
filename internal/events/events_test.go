package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/hr"
)

func person(id string) *hr.Person {
	return &hr.Person{
		EmployeeID: id, GivenName: "Ada", FamilyName: "Lovelace", Email: "ada@example.com",
		Department: "Engineering", Title: "Engineer", Location: "Berlin", EmploymentType: hr.TypeEmployee,
		StartDate: hr.Date{Time: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)}, Status: hr.StatusActive,
	}
}

func date(s string) hr.Date {
	d, err := hr.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestValidate(t *testing.T) {
	noStatus := person("E100001")
	noStatus.Status = ""
	terminated := person("E100001")
	terminated.Status = hr.StatusTerm
	badDates := person("E100001")
	badDates.EndDate = date("2025-12-31")
	ownManager := person("E100001")
	ownManager.ManagerID = "E100001"
	twoBad := person("E100001")
	twoBad.Email, twoBad.Title = "", ""
	tests := []struct {
		name string
		e    Event
		// want is "field: reason" fragments, one per expected field error;
		// none means valid.
		want []string
	}{
		{"hire", Event{Type: TypeHire, Person: person("E100001")}, nil},
		{"hire without status is active", Event{Type: TypeHire, Person: noStatus}, nil},
		{"move", Event{Type: TypeMove, Person: person("E100001")}, nil},
		{"terminate now", Event{Type: TypeTerminate, EmployeeID: "E100001"}, nil},
		{"terminate later", Event{Type: TypeTerminate, EmployeeID: "E100001", Effective: date("2026-12-31"), Reason: "end of contract"}, nil},
		{"request access", Event{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "postgres/prod_admin",
			Duration: "8h", Justification: "incident 42", RequestedBy: "E100002"}, nil},
		{"request access, defaults", Event{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "ldap/vpn"}, nil},

		{"no type", Event{EmployeeID: "E100001"}, []string{"type: is required"}},
		{"unknown type", Event{Type: "fire", EmployeeID: "E100001"}, []string{`type: want one of hire, move, terminate, request-access, got "fire"`}},
		{"hire without person", Event{Type: TypeHire}, []string{"person: is required"}},
		{"hire terminated", Event{Type: TypeHire, Person: terminated}, []string{"status: employee E100001 has status terminated: refusing to hire"}},
		{"move terminated", Event{Type: TypeMove, Person: terminated}, []string{"refusing to move"}},
		{"end before start", Event{Type: TypeHire, Person: badDates}, []string{"end_date: 2025-12-31 is before start_date 2026-01-05"}},
		{"own manager", Event{Type: TypeMove, Person: ownManager}, []string{"manager_id: a person cannot be their own manager"}},
		{"every bad field", Event{Type: TypeHire, Person: twoBad}, []string{"email: is required", "title: is required"}},
		{"hire with stray fields", Event{Type: TypeHire, Person: person("E100001"), EmployeeID: "E100001", Reason: "x"},
			[]string{"employee_id: is not part of a hire event", "reason: is not part of a hire event"}},
		{"terminate without employee", Event{Type: TypeTerminate}, []string{"employee_id: is required"}},
		{"terminate bad employee", Event{Type: TypeTerminate, EmployeeID: "e1"}, []string{`employee_id: must be an employee ID, E followed by 6 digits, got "e1"`}},
		{"terminate with a person", Event{Type: TypeTerminate, EmployeeID: "E100001", Person: person("E100001")}, []string{"person: is not part of a terminate event"}},
		{"terminate long reason", Event{Type: TypeTerminate, EmployeeID: "E100001", Reason: strings.Repeat("x", MaxTextLen+1)}, []string{"reason: has 1001 bytes"}},
		{"terminate control character", Event{Type: TypeTerminate, EmployeeID: "E100001", Reason: "a\x1bb"}, []string{"reason: contains a control character"}},
		{"request access without entitlement", Event{Type: TypeRequestAccess, EmployeeID: "E100001"}, []string{"entitlement: is required"}},
		{"entitlement without slash", Event{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "prod_admin"}, []string{"entitlement: want APPLICATION/ENTITLEMENT"}},
		{"entitlement bad characters", Event{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "postgres/prod admin"}, []string{"letters, digits"}},
		{"bad duration", Event{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "ldap/vpn", Duration: "ten days"}, []string{"duration: \"ten days\" is not a duration: use e.g. 30d"}},
		{"zero duration", Event{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "ldap/vpn", Duration: "0h"}, []string{"duration: \"0h\": must be positive"}},
		{"bad requester", Event{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "ldap/vpn", RequestedBy: "bob"}, []string{"requested_by: must be an employee ID"}},
		{"request access with a date", Event{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "ldap/vpn", Effective: date("2026-01-01")},
			[]string{"effective: is not part of a request-access event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var ie *InvalidError
			require.ErrorAs(t, err, &ie)
			assert.Len(t, ie.Fields(), len(tt.want), "one field error each: %v", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "invalid event, nothing started:"))
		})
	}
}

func TestInvalidErrorListsFieldsOnePerLine(t *testing.T) {
	p := person("E100001")
	p.Email, p.Title = "", ""
	err := Event{Type: TypeHire, Person: p}.Validate()
	assert.Equal(t, "invalid event, nothing started:\n  email: is required\n  title: is required", err.Error())
	one := Event{Type: TypeTerminate}.Validate()
	assert.Equal(t, "invalid event, nothing started: employee_id: is required: an employee ID, E followed by 6 digits", one.Error())
	assert.True(t, IsInvalid(one))
	assert.False(t, IsInvalid(errors.New("connection refused")))
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Event
		// err is a fragment of the error; empty means success.
		err string
	}{
		{"hire", `{"type":"hire","person":{"employee_id":"E100001","given_name":"Ada","family_name":"Lovelace","email":"ada@example.com",
			"department":"Engineering","title":"Engineer","location":"Berlin","employment_type":"employee","start_date":"2026-01-05","status":"active"}}`,
			Event{Type: TypeHire, Person: person("E100001")}, ""},
		{"terminate", `{"type":"terminate","employee_id":"E100001","effective":"2026-12-31","reason":"end of contract"}` + "\n",
			Event{Type: TypeTerminate, EmployeeID: "E100001", Effective: date("2026-12-31"), Reason: "end of contract"}, ""},
		{"null date", `{"type":"terminate","employee_id":"E100001","effective":null}`, Event{Type: TypeTerminate, EmployeeID: "E100001"}, ""},
		{"unknown field", `{"type":"terminate","employee_id":"E100001","when":"now"}`, Event{}, `when: unknown field`},
		{"unknown person field", `{"type":"hire","person":{"employee_id":"E100001","salary":1}}`, Event{}, `salary: unknown field`},
		{"malformed", `{"type":"hire",`, Event{}, "body: malformed JSON"},
		{"syntax error", `{"type" "hire"}`, Event{}, "body: malformed JSON at byte"},
		{"two values", `{"type":"terminate"} {"type":"terminate"}`, Event{}, "more than one JSON value"},
		{"trailing garbage", `{"type":"terminate"} x`, Event{}, "more than one JSON value"},
		{"empty", "  \n", Event{}, "body: is empty"},
		{"array", `[]`, Event{}, "body: want a JSON object, got array"},
		{"wrong type", `{"type":"terminate","employee_id":100001}`, Event{}, "employee_id: want a JSON string, got number"},
		{"bad date", `{"type":"terminate","employee_id":"E100001","effective":"31.12.2026"}`, Event{}, `effective: want YYYY-MM-DD, got "31.12.2026"`},
		{"bad person date", `{"type":"hire","person":{"start_date":"soon"}}`, Event{}, `start_date: want YYYY-MM-DD, got "soon"`},
		{"date as number", `{"type":"hire","person":{"start_date":20260105}}`, Event{}, "start_date: want a JSON string, got number"},
		{"too large", `{"type":"terminate","reason":"` + strings.Repeat("x", MaxEventBytes) + `"}`, Event{}, "body: is larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(strings.NewReader(tt.body))
			if tt.err == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.Error(t, err)
			assert.True(t, IsInvalid(err), "%T", err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

func TestDecodeTooLargeIsErrTooLarge(t *testing.T) {
	_, err := Decode(strings.NewReader(strings.Repeat(" ", MaxEventBytes+1)))
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = Decode(strings.NewReader(`{"type":"terminate","employee_id":"E100001"}` + strings.Repeat(" ", MaxEventBytes-100)))
	assert.NoError(t, err, "a body up to the limit is read")
}

func TestDecodePerson(t *testing.T) {
	p, err := DecodePerson(strings.NewReader(`{"employee_id":"E100001","start_date":"2026-01-05","end_date":""}`))
	require.NoError(t, err)
	assert.Equal(t, hr.Person{EmployeeID: "E100001", StartDate: date("2026-01-05")}, p)
	_, err = DecodePerson(strings.NewReader(`{"type":"hire"}`))
	assert.ErrorContains(t, err, "type: unknown field")
	_, err = DecodePerson(strings.NewReader(`{"end_date":"2026-13-01"}`))
	assert.ErrorContains(t, err, "end_date: want YYYY-MM-DD")
}

// TestEventRoundTrip checks that what Event marshals, Decode reads back:
// the webhook's integrators build bodies with the same types.
func TestEventRoundTrip(t *testing.T) {
	for _, e := range []Event{
		{Type: TypeHire, Person: person("E100001")},
		{Type: TypeTerminate, EmployeeID: "E100001", Effective: date("2026-12-31"), Reason: "r"},
		{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "ldap/vpn", Duration: "8h", Justification: "j", RequestedBy: "E100002"},
	} {
		data, err := json.Marshal(e)
		require.NoError(t, err)
		got, err := Decode(strings.NewReader(string(data)))
		require.NoError(t, err, string(data))
		assert.Equal(t, e, got)
	}
}

func TestAccessEnd(t *testing.T) {
	now := time.Date(2026, 6, 10, 15, 0, 0, 0, time.UTC)
	assert.Equal(t, now, AccessEnd(hr.Date{}, now), "no day: now")
	assert.Equal(t, now, AccessEnd(date("2026-06-01"), now), "a day over: now")
	assert.Equal(t, time.Date(2026, 6, 11, 0, 0, 0, 0, time.UTC), AccessEnd(date("2026-06-10"), now), "today: at midnight")
}
