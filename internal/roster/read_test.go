package roster

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/hr"
)

const header = "employee_id,given_name,family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status\n"

func TestReadRejectsTheWholeFile(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"wrong header", []byte("id,name\nE100001,Ana\n"), hr.ErrNotRoster},
		{"empty", nil, hr.ErrNotRoster},
		{"Latin-1 in a row", []byte(header + "E100001,Jos\xe9,Ruiz,j.ruiz@example.com,HR,Clerk,,Berlin,employee,2026-01-01,,active\n"), hr.ErrNotRoster},
		{"UTF-16", append([]byte{0xff, 0xfe}, []byte("e\x00m\x00")...), hr.ErrNotRoster},
		{"too large", append([]byte(header), bytes.Repeat([]byte("x"), MaxExportBytes)...), ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := Read(bytes.NewReader(tc.data))
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "got %v", err)
			assert.Empty(t, ex.Rows)
			assert.Empty(t, ex.Rejected)
		})
	}
}

func TestReadRejectsBadRowsWithLineAndID(t *testing.T) {
	data := header +
		"E100001,Ana,Top,ana.top@example.com,Exec,CEO,,Berlin,employee,2026-01-01,,active\n" +
		"E100002,Ben,Date,ben.date@example.com,Exec,CFO,E100001,Berlin,employee,2026-13-01,,active\n" +
		"\"E100003\",Cy \"Bare,Mid,cy@example.com,Exec,CFO,E100001,Berlin,employee,2026-01-01,,active\n" +
		"E100004,\"Di, \"\"Quoted\"\"\",\"Multi\nLine\",di@example.com,Exec,CTO,E100001,Berlin,employee,2026-01-01,,active\n" +
		"E100006,\"Ok, Quoted\",Low,e6@example.com,Exec,CTO,E100001,Berlin,employee,2026-01-01,,active\n" +
		"E100005,Ed,Short\n" +
		"X-1,Fay,Bad,fay@example.com,Exec,CTO,,Berlin,employee,2026-01-01,,active\n" +
		"E100001,Ana,Again,ana2@example.com,Exec,CEO,,Berlin,employee,2026-01-01,,active\n"
	ex, err := Read(strings.NewReader(data))
	require.NoError(t, err)
	require.Len(t, ex.Rows, 2)
	assert.Equal(t, "E100001", ex.Rows[0].Person.EmployeeID)
	assert.Equal(t, 2, ex.Rows[0].Line)
	assert.Equal(t, "E100006", ex.Rows[1].Person.EmployeeID)
	assert.Equal(t, "Ok, Quoted", ex.Rows[1].Person.GivenName)
	assert.Equal(t, 7, ex.Rows[1].Line, "the row after a two-line row keeps its real line")

	want := []struct {
		line   int
		id     string
		reason string
	}{
		{3, "E100002", "start_date"},
		{4, "E100003", "quote"},
		{5, "E100004", "control character"},
		{8, "E100005", "want 12 fields"},
		{9, "", "employee_id"},
		{10, "E100001", "repeats line 2"},
	}
	require.Len(t, ex.Rejected, len(want))
	for i, w := range want {
		got := ex.Rejected[i]
		assert.Equal(t, w.line, got.Line, "rejection %d", i)
		assert.Equal(t, w.id, got.EmployeeID, "rejection %d", i)
		assert.Contains(t, got.Reason, w.reason, "rejection %d", i)
		assert.NotContains(t, got.Reason, "\n", "one line per rejection")
	}
}

func TestReadTheSampleRoster(t *testing.T) {
	data, err := os.ReadFile("../../deployments/demo/roster.csv")
	require.NoError(t, err)
	ex, err := Read(bytes.NewReader(data))
	require.NoError(t, err)
	assert.Len(t, ex.Rows, 300)
	assert.Empty(t, ex.Rejected)
}

func TestIDAtLine(t *testing.T) {
	data := []byte("h\r\nE100001,a\r\n\"E100002\",b\n\"E10\nx\n ,\n")
	cases := []struct {
		line int
		want string
	}{{2, "E100001"}, {3, "E100002"}, {4, ""}, {6, ""}, {99, ""}}
	for _, tc := range cases {
		assert.Equal(t, tc.want, idAtLine(data, tc.line), "line %d", tc.line)
	}
}
