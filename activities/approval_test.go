package activities_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
)

// mapDirectory is a Directory over a fixed employee -> manager map.
type mapDirectory struct {
	managers map[string]string
	err      error
}

func (d mapDirectory) ManagerOf(_ context.Context, id string) (string, bool, error) {
	if d.err != nil {
		return "", false, d.err
	}
	m, ok := d.managers[id]
	return m, ok, nil
}

func TestManagerOf(t *testing.T) {
	dir := mapDirectory{managers: map[string]string{"E100008": "E100007", "E100005": ""}}
	cases := []struct {
		name     string
		dir      activities.Directory
		id       string
		want     activities.ManagerOfResult
		wantKind connectors.ErrorKind
	}{
		{name: "manager found", dir: dir, id: "E100008", want: activities.ManagerOfResult{ManagerID: "E100007", Known: true}},
		{name: "nobody above", dir: dir, id: "E100005", want: activities.ManagerOfResult{Known: true}},
		{name: "unknown person", dir: dir, id: "E999999", want: activities.ManagerOfResult{}},
		{name: "malformed ID", dir: dir, id: "x)(uid=*", wantKind: connectors.KindInvalid},
		{name: "no directory", dir: nil, id: "E100008", wantKind: connectors.KindInvalid},
		{name: "directory down", dir: mapDirectory{err: errors.New("roster unreadable")}, id: "E100008", wantKind: connectors.KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(&activities.Activities{Directory: tc.dir})
			v, err := env.ExecuteActivity((&activities.Activities{}).ManagerOf, activities.ManagerOfInput{EmployeeID: tc.id})
			if tc.wantKind != "" {
				require.Error(t, err)
				var ae *temporal.ApplicationError
				require.True(t, errors.As(err, &ae), "%v", err)
				assert.Equal(t, string(tc.wantKind), ae.Type())
				return
			}
			require.NoError(t, err)
			var got activities.ManagerOfResult
			require.NoError(t, v.Get(&got))
			assert.Equal(t, tc.want, got)
		})
	}
}
