package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
