package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/provisio-dev/provisio/internal/hr"
)

// fuzzEventSeeds are hostile and borderline event bodies; the files under
// testdata/fuzz/FuzzDecode add the ones fuzzing found interesting.
var fuzzEventSeeds = []string{
	`{"type":"hire","person":{"employee_id":"E100001","given_name":"Ada","family_name":"Lovelace","email":"ada@example.com","department":"Engineering","title":"Engineer","location":"Berlin","employment_type":"employee","start_date":"2026-01-05","status":"active"}}`,
	`{"type":"hire","person":{"employee_id":"E100001","given_name":"*)(uid=*","family_name":"x,ou=admins","email":"a@example.com","department":"'; DROP TABLE x;--","title":"<script>alert(1)</script>","location":"$(rm -rf /)","employment_type":"employee","start_date":"2026-01-05","attributes":{"cost_center":"has(person.x) || true"}}}`,
	`{"type":"hire","person":{"employee_id":"E100001","given_name":"A\u0000da","family_name":"L\nL","email":"a@example.com","department":"D","title":"T","location":"L","employment_type":"employee","start_date":"2026-01-05"}}`,
	`{"type":"terminate","employee_id":"E100001","reason":"line one\nline two\ttab"}`,
	`{"type":"terminate","employee_id":"E100001","reason":"\u001b[31mred"}`,
	`{"type":"request-access","employee_id":"E100001","entitlement":"postgres/prod_admin","duration":"8h","justification":"incident","requested_by":"E100002"}`,
	`{"type":"request-access","employee_id":"E100001","entitlement":"../../etc/passwd","duration":"-1h"}`,
	`{"type":"hire","type":"terminate","employee_id":"E100001"}`,
	`{"TYPE":"terminate","Employee_ID":"E100001"}`,
	`{"type":"terminate","employee_id":"E100001","\u0000evil\nkey":1}`,
	`{"type":"hire","person":{"attributes":{"k\u0000":1}}}`,
	`{"type":"hire","person":{"start_date":"2026-02-30","end_date":"yesterday"}}`,
	`{"type":"hire","person":null}`,
	`{"type":"terminate","employee_id":"E100001","effective":null}`,
	`{"type":"terminate","employee_id":"E100001"} {"type":"terminate","employee_id":"E100002"}`,
	`[{"type":"terminate"}]`,
	`"terminate"`,
	"\ufeff{\"type\":\"terminate\",\"employee_id\":\"E100001\"}",
	"{\"type\":\"terminate\",\"employee_id\":\"E10000\xff\"}",
	`{"type":1e999}`,
	`{"type":"terminate","employee_id":"E100001","reason":"` + strings.Repeat("x", 2000) + `"}`,
	``,
	`   `,
	`{"type":"hire","person":{"employee_id":"E100001"`,
}

// FuzzDecode feeds arbitrary bytes to Decode and Validate, the path every
// webhook body and `-f` file takes. It checks that:
//   - nothing panics; a body that is not UTF-8 is refused (never decoded
//     with replacement characters); every refusal is an *InvalidError naming at least
//     one field, with a message free of raw control characters (it is
//     printed to terminals and written to logs);
//   - a decoded event marshals back to JSON that decodes to the same event;
//   - an event Validate accepts holds only valid UTF-8 without control
//     characters (free text may hold newlines and tabs), within the limits.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzEventSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(bytes.NewReader(data))
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted a body that is not UTF-8: %q", data)
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("a decoded event does not marshal: %v", err)
		}
		back, err := Decode(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("the event's own JSON %s is refused: %v", again, err)
		}
		if !sameEvent(e, back) {
			t.Fatalf("round trip changed the event:\n%#v\n%#v", e, back)
		}
		if err := e.Validate(); err != nil {
			checkRefusal(t, err)
			return
		}
		checkAccepted(t, e)
	})
}

// FuzzDecodePerson is FuzzDecode for the bare person record of
// `hire -f person.json`.
func FuzzDecodePerson(f *testing.F) {
	for _, s := range fuzzEventSeeds {
		f.Add([]byte(s))
		if i := strings.Index(s, `"person":`); i >= 0 {
			f.Add([]byte(strings.TrimSuffix(s[i+len(`"person":`):], "}")))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePerson(bytes.NewReader(data))
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted a record that is not UTF-8: %q", data)
		}
		e := Event{Type: TypeHire, Person: &p}
		if err := e.Validate(); err != nil {
			checkRefusal(t, err)
			return
		}
		checkAccepted(t, e)
	})
}

// checkRefusal asserts that err is a refusal a person can act on.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("refusal is %T, not an *InvalidError: %v", err, err)
	}
	fields := ie.Fields()
	if len(fields) == 0 {
		t.Fatalf("refusal names no field: %v", err)
	}
	for _, f := range fields {
		if f.Field == "" {
			t.Fatalf("a field error without a field name: %v", err)
		}
		name, _, _ := strings.Cut(f.Field, ".")
		if !jsonNames[name] && !strings.HasPrefix(f.Reason, "unknown field") {
			t.Fatalf("refusal names %q, which is not a field of an event: %v", f.Field, err)
		}
		for _, s := range []string{f.Field, f.Reason} {
			if bad := unsafeText(s, false); bad != "" {
				t.Fatalf("refusal %q: %s", err.Error(), bad)
			}
		}
		if len(f.Field) > 200 {
			t.Fatalf("field name of %d bytes in a refusal: %.80q...", len(f.Field), f.Field)
		}
	}
	if len(err.Error()) > 64<<10 {
		t.Fatalf("refusal of %d bytes: an error must not echo the input", len(err.Error()))
	}
}

// jsonNames are the field names a refusal may use: the JSON keys of an
// event and of a person, and "body" for the request as a whole.
var jsonNames = func() map[string]bool {
	names := map[string]bool{"body": true}
	for _, typ := range []reflect.Type{reflect.TypeFor[Event](), reflect.TypeFor[hr.Person]()} {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			names[name] = true
		}
	}
	return names
}()

// checkAccepted asserts what every accepted event guarantees downstream.
func checkAccepted(t *testing.T, e Event) {
	t.Helper()
	if !slices.Contains(Types(), e.Type) {
		t.Fatalf("accepted unknown type %q", e.Type)
	}
	for name, v := range map[string]string{
		"employee_id": e.EmployeeID, "entitlement": e.Entitlement, "duration": e.Duration, "requested_by": e.RequestedBy,
	} {
		if bad := unsafeText(v, false); bad != "" {
			t.Fatalf("accepted %s %q: %s", name, v, bad)
		}
	}
	for name, v := range map[string]string{"reason": e.Reason, "justification": e.Justification} {
		if bad := unsafeText(v, true); bad != "" {
			t.Fatalf("accepted %s %q: %s", name, v, bad)
		}
		if len(v) > MaxTextLen {
			t.Fatalf("accepted %s of %d bytes", name, len(v))
		}
	}
	if p := e.Person; p != nil {
		if !hr.ValidEmployeeID(p.EmployeeID) {
			t.Fatalf("accepted employee ID %q", p.EmployeeID)
		}
		for _, v := range []string{p.GivenName, p.FamilyName, p.Email, p.Department, p.Title, p.Location, p.ManagerID} {
			if bad := unsafeText(v, false); bad != "" {
				t.Fatalf("accepted person field %q: %s", v, bad)
			}
			if len(v) > hr.MaxFieldLen {
				t.Fatalf("accepted person field of %d bytes", len(v))
			}
		}
		for k, v := range p.Attributes {
			if bad := unsafeText(k, false) + unsafeText(v, false); bad != "" {
				t.Fatalf("accepted attribute %q=%q: %s", k, v, bad)
			}
		}
	}
}

// unsafeText says what makes s unsafe to store or print, or "".
func unsafeText(s string, multiline bool) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return "holds a control character"
		}
	}
	return ""
}

// sameEvent compares two events, treating an empty attribute map as none
// (omitempty drops it on the way out).
func sameEvent(a, b Event) bool {
	norm := func(e Event) Event {
		if e.Person != nil {
			p := *e.Person
			if len(p.Attributes) == 0 {
				p.Attributes = nil
			}
			e.Person = &p
		}
		return e
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
