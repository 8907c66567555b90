package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/provisio-dev/provisio/internal/testenv"
	"github.com/stretchr/testify/require"
)

// fixture is one test's view of the cluster: an admin connection outside
// the connector, a per-test prefix, and a connector under test. Every role
// whose name starts with the prefix is dropped when the test ends.
type fixture struct {
	t      *testing.T
	url    string
	prefix string
	admin  *pgx.Conn
	client *Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	url := testenv.PGURL(t)
	ctx := testenv.Context(t)
	admin, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	f := &fixture{t: t, url: url, prefix: "pvtest" + testenv.RandomLetters(6), admin: admin}
	t.Cleanup(func() {
		f.dropPrefixedRoles()
		_ = admin.Close(context.Background())
	})
	f.client, err = New(ctx, Config{URL: url, MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.client.Close() })
	return f
}

// exec runs admin SQL; identifiers in it are already quoted by the caller.
func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	_, err := f.admin.Exec(testenv.Context(f.t), sql, args...)
	require.NoError(f.t, err, sql)
}

// createGroup creates a NOLOGIN role by hand (as an operator would).
func (f *fixture) createGroup(name, attrs string) {
	f.t.Helper()
	f.exec("CREATE ROLE " + qi(name) + " NOLOGIN " + attrs)
}

// roleExists reports whether a role of exactly this name exists.
func (f *fixture) roleExists(name string) bool {
	f.t.Helper()
	var n int
	require.NoError(f.t, f.admin.QueryRow(testenv.Context(f.t), `SELECT count(*) FROM pg_roles WHERE rolname = $1`, name).Scan(&n))
	return n == 1
}

// prefixedRoles lists the roles whose names start with the fixture prefix.
func (f *fixture) prefixedRoles() []string {
	f.t.Helper()
	rows, err := f.admin.Query(testenv.Context(f.t), `SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY rolname`, f.prefix)
	require.NoError(f.t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(f.t, err)
	return names
}

// dropPrefixedRoles removes whatever the test left behind.
func (f *fixture) dropPrefixedRoles() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := f.admin.Query(ctx, `SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1)`, f.prefix)
	if err != nil {
		f.t.Logf("cleanup: %v", err)
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Logf("cleanup: %v", err)
		return
	}
	for _, n := range names {
		for _, sql := range []string{"REASSIGN OWNED BY " + qi(n) + " TO CURRENT_USER", "DROP OWNED BY " + qi(n), "DROP ROLE " + qi(n)} {
			if _, err := f.admin.Exec(ctx, sql); err != nil {
				f.t.Logf("cleanup %q: %v", n, err)
			}
		}
	}
}

// login connects as username with no password: the test cluster trusts
// local connections, so only NOLOGIN (or a missing role) can refuse it.
func (f *fixture) login(ctx context.Context, role string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(f.url)
	if err != nil {
		return nil, err
	}
	cfg.User = role
	cfg.Password = ""
	return pgx.ConnectConfig(ctx, cfg)
}

// loginOnce connects as role and disconnects at once.
func (f *fixture) loginOnce(ctx context.Context, role string) error {
	conn, err := f.login(ctx, role)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// qi quotes an identifier for the tests' own admin SQL, independently of the
// connector's code under test.
func qi(name string) string { return pgx.Identifier{name}.Sanitize() }
