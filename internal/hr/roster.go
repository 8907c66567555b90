package hr

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// RosterHeader is the exact header of an HR roster export.
var RosterHeader = []string{
	"employee_id", "given_name", "family_name", "email", "department", "title",
	"manager_id", "location", "employment_type", "start_date", "end_date", "status",
}

// MaxRosterRecordBytes bounds one CSV record; a larger one is rejected as a
// row error. (encoding/csv still reads it, so callers bound the whole input.)
const MaxRosterRecordBytes = 64 << 10

// ErrNotRoster means the input is not a roster at all (wrong header or not
// UTF-8) and must be rejected whole.
var ErrNotRoster = errors.New("not an HR roster")

const utf8BOM = "\ufeff"

// RowError is a bad roster row: its 1-based line number and the reason.
type RowError struct {
	Line int
	Err  error
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// Row is one parsed roster row with the line it started on.
type Row struct {
	Line   int
	Person Person
}

// ReadRoster parses a roster CSV. It returns ErrNotRoster (wrapped) for input
// that is not a roster; otherwise the good rows and one RowError per bad row,
// so one bad row never stops the others. A duplicate employee ID rejects every
// row after the first that carries it.
func ReadRoster(r io.Reader) ([]Row, []*RowError, error) {
	br := bufio.NewReader(r)
	// A byte-order mark (Excel's "CSV UTF-8") is dropped before the CSV
	// reader sees it: left in place it would make a quoted first header
	// field a bare-quote error.
	if bom, err := br.Peek(len(utf8BOM)); err == nil && string(bom) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: cannot read header: %v", ErrNotRoster, err)
	}
	if !slices.Equal(header, RosterHeader) {
		return nil, nil, fmt.Errorf("%w: header must be %q", ErrNotRoster, strings.Join(RosterHeader, ","))
	}
	var rows []Row
	var bad []*RowError
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				// encoding/csv drops the rest of the broken line and goes on
				// with the next record, so one stray quote costs one row.
				bad = append(bad, &RowError{Line: pe.StartLine, Err: pe.Err})
				continue
			}
			return rows, bad, fmt.Errorf("read roster: %w", err)
		}
		line, _ := cr.FieldPos(0)
		for _, f := range rec {
			if !utf8.ValidString(f) {
				return nil, nil, fmt.Errorf("%w: line %d is not UTF-8", ErrNotRoster, line)
			}
		}
		p, err := parseRecord(rec)
		if err != nil {
			bad = append(bad, &RowError{Line: line, Err: err})
			continue
		}
		if first, dup := seen[p.EmployeeID]; dup {
			bad = append(bad, &RowError{Line: line, Err: fmt.Errorf("employee_id %s repeats line %d", p.EmployeeID, first)})
			continue
		}
		seen[p.EmployeeID] = line
		rows = append(rows, Row{Line: line, Person: p})
	}
	return rows, bad, nil
}

func parseRecord(rec []string) (Person, error) {
	if len(rec) != len(RosterHeader) {
		return Person{}, fmt.Errorf("want %d fields, got %d", len(RosterHeader), len(rec))
	}
	size := 0
	for _, f := range rec {
		size += len(f)
	}
	if size > MaxRosterRecordBytes {
		return Person{}, fmt.Errorf("row is larger than %d bytes", MaxRosterRecordBytes)
	}
	start, err := ParseDate(rec[9])
	if err != nil {
		return Person{}, &FieldError{Field: "start_date", Reason: err.Error()}
	}
	end, err := ParseDate(rec[10])
	if err != nil {
		return Person{}, &FieldError{Field: "end_date", Reason: err.Error()}
	}
	p := Person{
		EmployeeID: rec[0], GivenName: rec[1], FamilyName: rec[2], Email: rec[3],
		Department: rec[4], Title: rec[5], ManagerID: rec[6], Location: rec[7],
		EmploymentType: rec[8], StartDate: start, EndDate: end, Status: rec[11],
	}
	if err := p.Validate(); err != nil {
		return Person{}, err
	}
	return p, nil
}

// FindInRoster reads a roster and returns the person with employeeID.
func FindInRoster(data []byte, employeeID string) (Person, error) {
	rows, _, err := ReadRoster(bytes.NewReader(data))
	if err != nil {
		return Person{}, err
	}
	for _, r := range rows {
		if r.Person.EmployeeID == employeeID {
			return r.Person, nil
		}
	}
	return Person{}, fmt.Errorf("employee %s is not in the roster (or its row is invalid)", employeeID)
}
