package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/roster"
)

func TestRosterDirectory(t *testing.T) {
	roster := `employee_id,given_name,family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status
E000001,Ana,Top,ana.top@example.com,Exec,CEO,,Berlin,employee,2020-01-01,,active
E000002,Ben,Gone,ben.gone@example.com,Exec,CFO,E000001,Berlin,employee,2020-01-01,2025-01-01,terminated
E000003,Cy,Mid,cy.mid@example.com,Finance,Manager,E000002,Berlin,employee,2020-01-01,,active
E000004,Di,Low,di.low@example.com,Finance,Clerk,E000003,Berlin,employee,2020-01-01,,active
E000005,Ed,Loop,ed.loop@example.com,Finance,Clerk,E000006,Berlin,employee,2020-01-01,2025-01-01,terminated
E000006,Fay,Loop,fay.loop@example.com,Finance,Clerk,E000005,Berlin,employee,2020-01-01,2025-01-01,terminated
E000007,Gus,Odd,gus.odd@example.com,Finance,Clerk,E000005,Berlin,employee,2020-01-01,,active
E000008,Hal,Away,hal.away@example.com,Finance,Clerk,E999999,Berlin,employee,2020-01-01,,active
`
	file := filepath.Join(t.TempDir(), "roster.csv")
	require.NoError(t, os.WriteFile(file, []byte(roster), 0o600))
	d, err := loadRosterDirectory(file, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	cases := []struct {
		id, want  string
		wantFound bool
		name      string
	}{
		{"E000004", "E000003", true, "the direct manager"},
		{"E000003", "E000001", true, "a terminated manager is skipped"},
		{"E000001", "", true, "nobody above the top"},
		{"E000007", "", true, "a loop of terminated managers ends with nobody"},
		{"E000008", "E999999", true, "a manager missing from the export is still asked"},
		{"E123456", "", false, "unknown person"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, found, err := d.ManagerOf(context.Background(), tc.id)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantFound, found)
		})
	}
}

func TestRosterDirectoryFiles(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Run("missing file: empty directory", func(t *testing.T) {
		d, err := loadRosterDirectory(filepath.Join(t.TempDir(), "absent.csv"), logger)
		require.NoError(t, err)
		_, found, err := d.ManagerOf(context.Background(), "E100008")
		require.NoError(t, err)
		assert.False(t, found)
	})
	t.Run("not a roster: refused", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "x.csv")
		require.NoError(t, os.WriteFile(file, []byte("a,b\n1,2\n"), 0o600))
		_, err := loadRosterDirectory(file, logger)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not an HR roster")
	})
	t.Run("the demo roster", func(t *testing.T) {
		d, err := loadRosterDirectory("../../deployments/demo/roster.csv", logger)
		require.NoError(t, err)
		got, found, err := d.ManagerOf(context.Background(), "E100008")
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, "E100007", got)
	})
}

// fakeSynced is a synced roster in memory; err makes every lookup fail.
type fakeSynced struct {
	people map[string]roster.State
	err    error
}

func (f fakeSynced) Lookup(_ context.Context, id string) (roster.State, bool, error) {
	if f.err != nil {
		return roster.State{}, false, f.err
	}
	st, ok := f.people[id]
	return st, ok, nil
}

func syncedState(id, manager string, status roster.Status) roster.State {
	return roster.State{EmployeeID: id, Status: status, Person: hr.Person{EmployeeID: id, ManagerID: manager, Department: "Synced"}}
}

func TestDirectorySyncedRosterFirst(t *testing.T) {
	// The file says E000004 reports to E000003 (active) and knows E000001.
	file := filepath.Join(t.TempDir(), "roster.csv")
	require.NoError(t, os.WriteFile(file, []byte(`employee_id,given_name,family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status
E000001,Ana,Top,ana.top@example.com,Exec,CEO,,Berlin,employee,2020-01-01,,active
E000003,Cy,Mid,cy.mid@example.com,Finance,Manager,E000001,Berlin,employee,2020-01-01,,active
E000004,Di,Low,di.low@example.com,Finance,Clerk,E000003,Berlin,employee,2020-01-01,,active
`), 0o600))
	fileDir, err := loadRosterDirectory(file, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	// The sync since moved E000004 under E000005, and E000003 left
	// (removed from the export); E000007 is new and only synced.
	synced := fakeSynced{people: map[string]roster.State{
		"E000004": syncedState("E000004", "E000005", roster.StatusActive),
		"E000005": syncedState("E000005", "E000003", roster.StatusActive),
		"E000003": syncedState("E000003", "E000001", roster.StatusRemoved),
		"E000007": syncedState("E000007", "E000003", roster.StatusActive),
	}}
	d := &directory{synced: synced, file: fileDir}
	cases := []struct {
		name, id, want string
		wantFound      bool
	}{
		{"the synced manager wins over the file's", "E000004", "E000005", true},
		{"a removed manager is skipped, then the file answers for the top", "E000007", "E000001", true},
		{"only in the file", "E000001", "", true},
		{"nowhere", "E123456", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, found, err := d.ManagerOf(context.Background(), tc.id)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantFound, found)
		})
	}
	p, found, err := d.Person(context.Background(), "E000004")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "Synced", p.Department, "the synced record, not the file's")
	p, found, err = d.Person(context.Background(), "E000001")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "Exec", p.Department)
	_, found, err = d.Person(context.Background(), "E123456")
	require.NoError(t, err)
	assert.False(t, found)

	t.Run("a database error is returned, not answered from the file", func(t *testing.T) {
		down := &directory{synced: fakeSynced{err: errors.New("connection refused")}, file: fileDir}
		_, _, err := down.ManagerOf(context.Background(), "E000004")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "connection refused")
		_, _, err = down.Person(context.Background(), "E000004")
		require.Error(t, err)
	})
}
