package roster

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/storetest"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// testStore is a Store on a database of its own, dropped when the test
// ends. PostgreSQL must be up: the test fails, never skips, without it.
func testStore(t *testing.T) *Store {
	t.Helper()
	return NewStore(storetest.Pool(t, "rostertest"))
}

func TestStoreSaveLoadLookup(t *testing.T) {
	s := testStore(t)
	ctx := testenv.Context(t)

	nasty := person("E100001", func(p *hr.Person) {
		p.GivenName, p.FamilyName = "Zoë 'Robert'); DROP TABLE roster_state;--", "O'Brien, cn=admin"
		p.EndDate = date("2027-01-31")
	})
	a := stateOf(hr.Row{Line: 2, Person: nasty})
	require.NoError(t, s.Save(ctx, "hr", a))

	got, err := s.Load(ctx, "hr")
	require.NoError(t, err)
	require.Len(t, got, 1)
	g := got["E100001"]
	assert.Equal(t, nasty, g.Person, "the record round-trips unchanged")
	assert.Equal(t, a.Hash, g.Hash)
	assert.Equal(t, Hash(g.Person), g.Hash, "the stored record hashes to its stored hash")
	assert.Equal(t, StatusActive, g.Status)
	assert.Equal(t, 2, g.Line)
	assert.WithinDuration(t, time.Now(), g.SyncedAt, time.Minute)

	// A save replaces; feeds stay apart.
	a.Status, a.Line = StatusRemoved, 7
	require.NoError(t, s.Save(ctx, "hr", a))
	other := stateOf(hr.Row{Line: 3, Person: person("E100001", func(p *hr.Person) { p.Title = "Contractor lead" })})
	require.NoError(t, s.Save(ctx, "contractors", other))
	got, err = s.Load(ctx, "hr")
	require.NoError(t, err)
	assert.Equal(t, StatusRemoved, got["E100001"].Status)
	assert.Equal(t, 7, got["E100001"].Line)
	empty, err := s.Load(ctx, "nobody")
	require.NoError(t, err)
	assert.Empty(t, empty)

	// Lookup prefers the active record over a more recent inactive one.
	st, found, err := s.Lookup(ctx, "E100001")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "Contractor lead", st.Person.Title)
	_, found, err = s.Lookup(ctx, "E999999")
	require.NoError(t, err)
	assert.False(t, found)

	known, err := s.Known(ctx, "E100001")
	require.NoError(t, err)
	assert.True(t, known)
	known, err = s.Known(ctx, "E999999")
	require.NoError(t, err)
	assert.False(t, known)
	among, err := s.KnownAmong(ctx, []string{"E100001", "E999999"})
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"E100001": true}, among)
	among, err = s.KnownAmong(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, among)
}

func TestStoreSaveRefusesAMismatchedRecord(t *testing.T) {
	s := testStore(t)
	st := stateOf(hr.Row{Line: 2, Person: person("E100001")})
	st.EmployeeID = "E100002"
	err := s.Save(testenv.Context(t), "hr", st)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not match")
}

func TestStoreLockKeepsTwoSyncsOfAFeedApart(t *testing.T) {
	s := testStore(t)
	ctx := testenv.Context(t)
	release, err := s.Lock(ctx, "hr")
	require.NoError(t, err)
	_, err = s.Lock(ctx, "hr")
	assert.True(t, errors.Is(err, ErrBusy), "got %v", err)
	other, err := s.Lock(ctx, "contractors")
	require.NoError(t, err, "another feed is not blocked")
	other()
	release()
	again, err := s.Lock(ctx, "hr")
	require.NoError(t, err, "released")
	again()
}

func TestValidateSource(t *testing.T) {
	for _, ok := range []string{"hr", "workday-eu", "e2e.20261125_1", "0"} {
		assert.NoError(t, ValidateSource(ok), ok)
	}
	for _, bad := range []string{"", "HR", "-x", "a b", "a/b", "é", string(make([]byte, 65))} {
		err := ValidateSource(bad)
		require.Error(t, err, "%q", bad)
		assert.Contains(t, err.Error(), "source:")
	}
}
