package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeUsernames is a username store that knows the IDs in the map.
type fakeUsernames map[string]string

func (f fakeUsernames) Lookup(_ context.Context, id string) (string, bool, error) {
	u, ok := f[id]
	return u, ok, nil
}

// failing is a store that is down.
type failing struct{}

func (failing) Lookup(context.Context, string) (string, bool, error) {
	return "", false, errors.New("connection refused")
}
func (failing) Known(context.Context, string) (bool, error) {
	return false, errors.New("connection refused")
}

func TestHRPeopleKnowsWhoAnySourceKnows(t *testing.T) {
	roster := "../deployments/demo/roster.csv" // holds E100008
	synced := peopleFunc(func(id string) (bool, error) { return id == "E200001", nil })
	garbage := filepath.Join(t.TempDir(), "roster.csv")
	require.NoError(t, os.WriteFile(garbage, []byte("id;name\n"), 0o600))
	tests := []struct {
		name   string
		people *hrPeople
		id     string
		want   bool
		err    string
	}{
		{"in the roster file", &hrPeople{rosterFile: roster, usernames: failing{}, synced: failing{}}, "E100008", true, ""},
		{"with a username", &hrPeople{rosterFile: roster, usernames: fakeUsernames{"E300001": "ada"}, synced: failing{}}, "E300001", true, ""},
		{"in the synced roster", &hrPeople{rosterFile: roster, usernames: fakeUsernames{}, synced: synced}, "E200001", true, ""},
		{"nowhere", &hrPeople{rosterFile: roster, usernames: fakeUsernames{}, synced: synced}, "E999999", false, ""},
		{"no roster file is nobody", &hrPeople{rosterFile: "/nonexistent/roster.csv", usernames: fakeUsernames{}, synced: synced}, "E100008", false, ""},
		{"username store down", &hrPeople{rosterFile: roster, usernames: failing{}, synced: synced}, "E200001", false, "username store: connection refused"},
		{"synced roster down", &hrPeople{rosterFile: roster, usernames: fakeUsernames{}, synced: failing{}}, "E999999", false, "synced roster: connection refused"},
		{"not a roster", &hrPeople{rosterFile: garbage, usernames: fakeUsernames{}, synced: synced}, "E200001", false, "not an HR roster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := tt.people.Known(context.Background(), tt.id)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.False(t, ok)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, ok)
		})
	}
}
