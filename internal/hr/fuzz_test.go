package hr

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzReadRoster feeds arbitrary bytes to ReadRoster. It must never panic;
// every row it returns must validate, hold no control character or invalid
// UTF-8, and survive a round trip (written back as CSV and as JSON, it
// reads back the same); line numbers must increase and an employee ID is
// returned once. The files under testdata/fuzz/FuzzReadRoster hold the
// hostile cases: injection strings, control characters, BOMs, broken
// quoting, huge fields.
func FuzzReadRoster(f *testing.F) {
	f.Add([]byte(header + row("E100001") + row("E100002")))
	f.Add([]byte("\ufeff" + header + row("E100001")))
	f.Add([]byte(header + "E100001,\"Ada,\nX\",L,a@example.com,D,T,,L,employee,2026-03-01,,active\n" + row("E100002")))
	f.Add([]byte(header + "E100001,\"Ada\"x,L\n\"unterminated\n" + row("E100002")))
	f.Add([]byte(header + "E100001,Ada \"q\" x,L\n" + row("E100002") + row("E100002")))
	f.Add([]byte(header + "E100001,Jos\xe9,M\n"))
	f.Add([]byte(header + "\n\n,\n\"\"\n"))
	f.Add([]byte("employee_id\n"))
	f.Add([]byte(header + "E100001,\"O'Brien, Jr.\",\"*)(uid=*\",a@example.com,\"'; DROP TABLE x;--\",<b>T</b>,,\"$(id)\",employee,2026-03-01,,active\n"))
	f.Add([]byte(header + "E100001,A\x00da,L,a@example.com,D,T,,L,employee,2026-03-01,,active\n"))
	f.Add([]byte(header + "E100001,\"A\rda\",L,a@example.com,D,T,,L,employee,2026-03-01,,active\r\n"))
	f.Add([]byte(header + "E100001," + strings.Repeat("x", MaxRosterRecordBytes+1) + ",L,a@example.com,D,T,,L,employee,2026-03-01,,active\n"))
	f.Add([]byte(header + "E100001,Ada,Lovelace,a@example.com,D,T,E100002,L,employee,2026-03-01,,active\n" +
		"E100002,Bob,B,b@example.com,D,T,E100001,L,employee,2026-03-01,,active\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, bad, err := ReadRoster(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrNotRoster) {
				t.Fatalf("an in-memory reader failed with %v, not ErrNotRoster", err)
			}
			if rows != nil || bad != nil {
				t.Fatalf("a rejected file returned %d rows and %d row errors", len(rows), len(bad))
			}
			return
		}
		seen := map[string]bool{}
		last := 1 // the header's line
		for _, r := range rows {
			if err := r.Person.Validate(); err != nil {
				t.Fatalf("line %d returned although invalid: %v", r.Line, err)
			}
			checkCleanPerson(t, r.Person)
			if r.Line <= last {
				t.Fatalf("row line %d after line %d", r.Line, last)
			}
			last = r.Line
			if seen[r.Person.EmployeeID] {
				t.Fatalf("employee %s returned twice", r.Person.EmployeeID)
			}
			seen[r.Person.EmployeeID] = true
		}
		last = 1
		for _, b := range bad {
			if b.Line <= last {
				t.Fatalf("row error line %d after line %d", b.Line, last)
			}
			last = b.Line
			if b.Err == nil {
				t.Fatalf("row error at line %d has no cause", b.Line)
			}
			if len(b.Error()) > 64<<10 {
				t.Fatalf("row error at line %d is %d bytes: an error must not echo the row", b.Line, len(b.Error()))
			}
		}
		checkRosterRoundTrip(t, rows)
	})
}

// checkRosterRoundTrip writes rows back as a roster and as JSON and
// asserts both read back as the same people.
func checkRosterRoundTrip(t *testing.T, rows []Row) {
	t.Helper()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(RosterHeader)
	for _, r := range rows {
		p := r.Person
		_ = w.Write([]string{p.EmployeeID, p.GivenName, p.FamilyName, p.Email, p.Department, p.Title,
			p.ManagerID, p.Location, p.EmploymentType, p.StartDate.String(), p.EndDate.String(), p.Status})
	}
	w.Flush()
	again, bad, err := ReadRoster(&buf)
	if err != nil || len(bad) > 0 {
		t.Fatalf("rows written back do not read back: %v %v", err, bad)
	}
	if len(again) != len(rows) {
		t.Fatalf("%d rows written back, %d read back", len(rows), len(again))
	}
	for i := range rows {
		if !reflect.DeepEqual(rows[i].Person, again[i].Person) {
			t.Fatalf("CSV round trip changed a person:\n%#v\n%#v", rows[i].Person, again[i].Person)
		}
		data, err := json.Marshal(rows[i].Person)
		if err != nil {
			t.Fatalf("marshal %s: %v", rows[i].Person.EmployeeID, err)
		}
		var back Person
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("%s does not unmarshal: %v", data, err)
		}
		if !reflect.DeepEqual(rows[i].Person, back) {
			t.Fatalf("JSON round trip changed a person:\n%#v\n%#v", rows[i].Person, back)
		}
	}
}

// FuzzValidate builds a person from arbitrary strings. Validate must never
// panic; what it accepts holds no control character, no invalid UTF-8 and
// no field over MaxFieldLen; what it refuses is refused field by field,
// each error naming a field of the record and free of raw control
// characters (messages go to terminals, logs and HTTP answers).
func FuzzValidate(f *testing.F) {
	f.Add("E100001", "Ada", "Lovelace", "ada@example.com", "Engineering", "", "cost_center", "42")
	f.Add("E100001", "O'Brien", "Nguyễn-Smith", "o'brien@example.com", "R&D", "E100002", "", "")
	f.Add("E100001", "*)(uid=*", "x,ou=admins", "a@example.com", "'; DROP TABLE t;--", "E100001", "k", "v")
	f.Add("E10000\x00", "A\x00", "\x1b[31m", "a@b..com", "\xff", "E1", "\x00", "\n")
	f.Add("e100001", " ", "\u202e", "a@-b.com", strings.Repeat("é", 200), "", "has(x)", strings.Repeat("v", 10000))
	f.Add("E100001", "山田", "太郎", "a@example.com", "営業", "", "", "")
	f.Fuzz(func(t *testing.T, id, given, family, email, dept, manager, key, value string) {
		p := Person{
			EmployeeID: id, GivenName: given, FamilyName: family, Email: email, Department: dept,
			Title: "Engineer", ManagerID: manager, Location: "Berlin", EmploymentType: TypeEmployee,
			StartDate: mustDate("2026-01-05"), Status: StatusActive,
		}
		if key != "" || value != "" {
			p.Attributes = map[string]string{key: value}
		}
		err := p.Validate()
		if err == nil {
			checkCleanPerson(t, p)
			return
		}
		known := map[string]bool{}
		for _, name := range RosterHeader {
			known[name] = true
		}
		known["attributes"] = true
		var leaves []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			leaves = j.Unwrap()
		} else {
			leaves = []error{err}
		}
		for _, leaf := range leaves {
			var fe *FieldError
			if !errors.As(leaf, &fe) {
				t.Fatalf("refusal %v is not a FieldError", leaf)
			}
			if name, _, _ := strings.Cut(fe.Field, "."); !known[name] {
				t.Fatalf("refusal names field %q, not a field of the record", fe.Field)
			}
			if msg := fe.Error(); !utf8.ValidString(msg) || strings.ContainsFunc(msg, unicode.IsControl) {
				t.Fatalf("refusal %q carries raw control characters or invalid UTF-8", msg)
			}
		}
	})
}

// FuzzParseDate checks that a date ParseDate accepts has exactly one
// spelling: it formats back to the input, so two spellings never name two
// different records of the same day.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-01-05", "", "2026-02-30", "2026-1-5", "+2026-01-05", "02026-01-05", "2026-01-05T00:00:00Z", "0000-01-01", "9999-12-31", "2026-01-05\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			if msg := err.Error(); strings.ContainsFunc(msg, unicode.IsControl) {
				t.Fatalf("error %q carries raw control characters", msg)
			}
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDate(%q) formats back as %q", s, d.String())
		}
		data, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back Date
		if err := json.Unmarshal(data, &back); err != nil || !back.Equal(d.Time) {
			t.Fatalf("date %q does not survive JSON (%s): %v", s, data, err)
		}
	})
}

// checkCleanPerson asserts the guarantees of a person that validated.
func checkCleanPerson(t *testing.T, p Person) {
	t.Helper()
	fields := []string{p.EmployeeID, p.GivenName, p.FamilyName, p.Email, p.Department, p.Title,
		p.ManagerID, p.Location, p.EmploymentType, p.Status}
	for k, v := range p.Attributes {
		fields = append(fields, k, v)
	}
	for _, v := range fields {
		if !utf8.ValidString(v) {
			t.Fatalf("%s holds invalid UTF-8 %q", p.EmployeeID, v)
		}
		if strings.ContainsFunc(v, unicode.IsControl) {
			t.Fatalf("%s holds a control character in %q", p.EmployeeID, v)
		}
		if len(v) > MaxFieldLen {
			t.Fatalf("%s holds a field of %d bytes", p.EmployeeID, len(v))
		}
	}
}
