package hr

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReadRoster feeds arbitrary bytes to ReadRoster: it must never panic,
// every row it returns must validate, and line numbers must increase.
func FuzzReadRoster(f *testing.F) {
	f.Add([]byte(header + row("E100001") + row("E100002")))
	f.Add([]byte("\ufeff" + header + row("E100001")))
	f.Add([]byte(header + "E100001,\"Ada,\nX\",L,a@example.com,D,T,,L,employee,2026-03-01,,active\n" + row("E100002")))
	f.Add([]byte(header + "E100001,\"Ada\"x,L\n\"unterminated\n" + row("E100002")))
	f.Add([]byte(header + "E100001,Ada \"q\" x,L\n" + row("E100002") + row("E100002")))
	f.Add([]byte(header + "E100001,Jos\xe9,M\n"))
	f.Add([]byte(header + "\n\n,\n\"\"\n"))
	f.Add([]byte("employee_id\n"))
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
		}
	})
}
