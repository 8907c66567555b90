package hr

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const header = "employee_id,given_name,family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status\n"

// row renders a valid roster line for employee id.
func row(id string) string {
	return id + ",Ada,Lovelace,ada." + id + "@example.com,Engineering,Engineer,,London,employee,2026-03-01,,active\n"
}

// demoRoster is the roster shipped with the demo deployment.
func demoRoster(t *testing.T) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "deployments", "demo", "roster.csv"))
	require.NoError(t, err)
	return data
}

// lines returns the Line of each row.
func lines(rows []Row) []int {
	out := make([]int, len(rows))
	for i, r := range rows {
		out[i] = r.Line
	}
	return out
}

// badLines returns the Line of each row error.
func badLines(bad []*RowError) []int {
	out := make([]int, len(bad))
	for i, b := range bad {
		out[i] = b.Line
	}
	return out
}

func TestReadRosterDemo(t *testing.T) {
	rows, bad, err := ReadRoster(bytes.NewReader(demoRoster(t)))
	require.NoError(t, err)
	assert.Empty(t, bad)
	require.Len(t, rows, 300)
	ids := map[string]bool{}
	for i, r := range rows {
		assert.Equal(t, i+2, r.Line, "rows are one a line after the header")
		assert.NoError(t, r.Person.Validate())
		assert.False(t, ids[r.Person.EmployeeID], "duplicate %s", r.Person.EmployeeID)
		ids[r.Person.EmployeeID] = true
	}
	assert.Equal(t, "E100000", rows[0].Person.EmployeeID)
	assert.Equal(t, "2026-01-29", rows[0].Person.StartDate.String())
	assert.Equal(t, "2026-07-28", rows[0].Person.EndDate.String())
}

func TestReadRosterWholeFileRejected(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"wrong header", strings.Replace(header, "email", "mail", 1) + row("E100001")},
		{"header in another order", "given_name,employee_id,family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status\n" + row("E100001")},
		{"missing column", strings.Replace(header, ",status", "", 1)},
		{"extra column", strings.TrimSuffix(header, "\n") + ",salary\n"},
		{"upper-case header", strings.ToUpper(header)},
		{"no header, data only", row("E100001") + row("E100002")},
		{"JSON", `{"employee_id":"E100001"}` + "\n"},
		{"binary", "\x00\x01\x02\xff\xfe"},
		{"UTF-16 with BOM", "\xff\xfee\x00m\x00p\x00"},
		{"semicolon separated", strings.ReplaceAll(header, ",", ";")},
		{"Latin-1 row", header + row("E100001") + "E100002,Jos\xe9,Mu\xf1oz,jose@example.com,Sales,Rep,,Madrid,employee,2026-03-01,,active\n" + row("E100003")},
		{"Latin-1 in the last row", header + row("E100001") + row("E100002") + "E100003,Ada,Lovelace,ada@example.com,Sales,Rep,,M\xfcnchen,employee,2026-03-01,,active\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, bad, err := ReadRoster(strings.NewReader(tt.in))
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrNotRoster), "want ErrNotRoster, got %v", err)
			assert.Empty(t, rows, "a rejected file yields no rows")
			assert.Empty(t, bad)
		})
	}
}

func TestReadRosterBOM(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"plain header", "\ufeff" + header + row("E100001")},
		// Excel-style: the BOM is followed by a quoted first field.
		{"quoted header", "\ufeff\"employee_id\",\"given_name\",family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status\n" + row("E100001")},
		{"CRLF line ends", "\ufeff" + strings.ReplaceAll(header+row("E100001"), "\n", "\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, bad, err := ReadRoster(strings.NewReader(tt.in))
			require.NoError(t, err)
			assert.Empty(t, bad)
			require.Len(t, rows, 1)
			assert.Equal(t, 2, rows[0].Line)
			assert.Equal(t, "E100001", rows[0].Person.EmployeeID)
		})
	}
	t.Run("BOM inside a later field is data", func(t *testing.T) {
		_, bad, err := ReadRoster(strings.NewReader(header + "\ufeff" + row("E100001")))
		require.NoError(t, err)
		require.Len(t, bad, 1)
		assert.Contains(t, bad[0].Error(), "employee_id")
	})
}

func TestReadRosterBadRows(t *testing.T) {
	huge := strings.Repeat("x", 10<<20)
	tests := []struct {
		name     string
		in       string
		goodIDs  []string
		goodAt   []int
		badAt    []int
		badWants []string // a fragment of each row error
	}{
		{
			name:     "too few fields",
			in:       header + row("E100001") + "E100002,Ada,Lovelace\n" + row("E100003"),
			goodIDs:  []string{"E100001", "E100003"},
			goodAt:   []int{2, 4},
			badAt:    []int{3},
			badWants: []string{"want 12 fields, got 3"},
		},
		{
			name:     "too many fields",
			in:       header + strings.TrimSuffix(row("E100001"), "\n") + ",extra\n" + row("E100002"),
			goodIDs:  []string{"E100002"},
			goodAt:   []int{3},
			badAt:    []int{2},
			badWants: []string{"want 12 fields, got 13"},
		},
		{
			name:     "bad start date",
			in:       header + strings.Replace(row("E100001"), "2026-03-01", "03/01/2026", 1) + row("E100002"),
			goodIDs:  []string{"E100002"},
			goodAt:   []int{3},
			badAt:    []int{2},
			badWants: []string{"start_date: want YYYY-MM-DD"},
		},
		{
			name:     "bad end date",
			in:       header + strings.Replace(row("E100001"), ",,active", ",2026-02-30,active", 1) + row("E100002"),
			goodIDs:  []string{"E100002"},
			goodAt:   []int{3},
			badAt:    []int{2},
			badWants: []string{"end_date: want YYYY-MM-DD"},
		},
		{
			name:     "invalid record",
			in:       header + row("E100001") + strings.Replace(row("x)(uid=*"), "employee,", "intern,", 1) + row("E100003"),
			goodIDs:  []string{"E100001", "E100003"},
			goodAt:   []int{2, 4},
			badAt:    []int{3},
			badWants: []string{"employee_id: must be E followed by 6 digits"},
		},
		{
			name:     "duplicate employee id",
			in:       header + row("E100001") + row("E100002") + row("E100001") + row("E100003") + row("E100001"),
			goodIDs:  []string{"E100001", "E100002", "E100003"},
			goodAt:   []int{2, 3, 5},
			badAt:    []int{4, 6},
			badWants: []string{"employee_id E100001 repeats line 2", "employee_id E100001 repeats line 2"},
		},
		{
			name:     "a 10 MB field",
			in:       header + row("E100001") + "E100002,Ada," + huge + ",ada@example.com,Sales,Rep,,Paris,employee,2026-03-01,,active\n" + row("E100003"),
			goodIDs:  []string{"E100001", "E100003"},
			goodAt:   []int{2, 4},
			badAt:    []int{3},
			badWants: []string{"larger than 65536 bytes"},
		},
		{
			name: "quoted commas and newlines keep later line numbers right",
			in: header +
				`E100001,"Ada, Countess",Lovelace,ada@example.com,"Research, Development","Analyst",,"London",employee,2026-03-01,,active` + "\n" +
				`E100002,Grace,Hopper,grace@example.com,Navy,"Rear` + "\n" + `Admiral",,Arlington,employee,2026-03-01,,active` + "\n" +
				`"E100003",Alan,Turing,alan@example.com,Maths,"Reader` + "\n\n" + `in Logic",,Manchester,employee,2026-03-01,,active` + "\n" +
				"E100004,Edsger,\"Dijkstra\nvan\",e@example.com,CS,Prof,,Austin,employee,2026-03-01,,active\n" +
				row("E100005"),
			goodIDs:  []string{"E100001", "E100005"},
			goodAt:   []int{2, 10},
			badAt:    []int{3, 5, 8},
			badWants: []string{"title: contains a control character", "title: contains a control character", "family_name: contains a control character"},
		},
		{
			name:     "stray quote costs one row",
			in:       header + row("E100001") + "E100002,Ada \"the\" Countess,Lovelace,a@example.com,R,A,,L,employee,2026-03-01,,active\n" + row("E100003"),
			goodIDs:  []string{"E100001", "E100003"},
			goodAt:   []int{2, 4},
			badAt:    []int{3},
			badWants: []string{"bare \" in non-quoted-field"},
		},
		{
			name:     "text after a closing quote costs one row",
			in:       header + row("E100001") + "E100002,\"Ada\"x,Lovelace,a@example.com,R,A,,L,employee,2026-03-01,,active\n" + row("E100003"),
			goodIDs:  []string{"E100001", "E100003"},
			goodAt:   []int{2, 4},
			badAt:    []int{3},
			badWants: []string{"extraneous or missing \" in quoted-field"},
		},
		{
			name:     "unterminated quote swallows the rest, reported at its start",
			in:       header + row("E100001") + "E100002,\"Ada,Lovelace\n" + row("E100003"),
			goodIDs:  []string{"E100001"},
			goodAt:   []int{2},
			badAt:    []int{3},
			badWants: []string{"extraneous or missing \" in quoted-field"},
		},
		{
			name:     "blank lines are skipped but counted",
			in:       header + "\n" + row("E100001") + "\n\n" + row("E100002"),
			goodIDs:  []string{"E100001", "E100002"},
			goodAt:   []int{3, 6},
			badAt:    []int{},
			badWants: []string{},
		},
		{
			name:     "header only",
			in:       header,
			goodIDs:  []string{},
			goodAt:   []int{},
			badAt:    []int{},
			badWants: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, bad, err := ReadRoster(strings.NewReader(tt.in))
			require.NoError(t, err)
			ids := []string{}
			for _, r := range rows {
				ids = append(ids, r.Person.EmployeeID)
				assert.NoError(t, r.Person.Validate())
			}
			assert.Equal(t, tt.goodIDs, ids)
			assert.Equal(t, tt.goodAt, lines(rows))
			assert.Equal(t, tt.badAt, badLines(bad))
			require.Len(t, bad, len(tt.badWants))
			for i, b := range bad {
				assert.Contains(t, b.Error(), tt.badWants[i])
				assert.True(t, strings.HasPrefix(b.Error(), "line "), "row error %q names no line", b)
				assert.NotNil(t, errors.Unwrap(b))
				assert.Less(t, len(b.Error()), 1000, "row error echoes the whole row")
			}
		})
	}
}

func TestReadRosterRowErrorKeepsFieldErrors(t *testing.T) {
	_, bad, err := ReadRoster(strings.NewReader(header + strings.Replace(row("E100001"), "employee,", "intern,", 1)))
	require.NoError(t, err)
	require.Len(t, bad, 1)
	var fe *FieldError
	require.True(t, errors.As(bad[0], &fe), "row error does not wrap a FieldError: %v", bad[0])
	assert.Equal(t, "employment_type", fe.Field)
}

// failingReader returns data and then a non-EOF error.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadRosterReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	rows, _, err := ReadRoster(&failingReader{data: []byte(header + row("E100001")), err: boom})
	require.Error(t, err)
	assert.True(t, errors.Is(err, boom))
	assert.False(t, errors.Is(err, ErrNotRoster))
	assert.Equal(t, []int{2}, lines(rows), "rows read before the failure are kept")
}

func TestFindInRoster(t *testing.T) {
	demo := demoRoster(t)
	withBad := []byte(header + row("E100001") + strings.Replace(row("E100002"), "employee,", "intern,", 1))
	tests := []struct {
		name    string
		data    []byte
		id      string
		want    string // family name found
		wantErr string
		notRost bool
	}{
		{name: "first", data: demo, id: "E100000", want: "Hamilton"},
		{name: "later", data: demo, id: "E100003", want: "van Rossum"},
		{name: "absent", data: demo, id: "E999999", wantErr: "E999999 is not in the roster"},
		{name: "invalid row", data: withBad, id: "E100002", wantErr: "not in the roster (or its row is invalid)"},
		{name: "not a roster", data: []byte("hello\n"), id: "E100001", notRost: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FindInRoster(tt.data, tt.id)
			switch {
			case tt.notRost:
				assert.True(t, errors.Is(err, ErrNotRoster), "got %v", err)
			case tt.wantErr != "":
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.id, p.EmployeeID)
				assert.Equal(t, tt.want, p.FamilyName)
			}
		})
	}
}
