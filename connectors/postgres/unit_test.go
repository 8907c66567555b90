package postgres

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/testenv"
)

func TestConfigStringRedacts(t *testing.T) {
	const pw = "hunter2-very-secret"
	tests := []struct {
		name string
		url  string
		keep string
	}{
		{"url password", "postgres://bob:" + pw + "@db.example.com:5432/app?sslmode=require", "db.example.com"},
		{"query password", "postgresql://bob@db.example.com/app?password=" + pw, "db.example.com"},
		{"key value", "host=db.example.com user=bob password=" + pw + " dbname=app", "db.example.com"},
		{"quoted key value", "host=db.example.com password='" + pw + " x' dbname=app", "dbname=app"},
		{"unparsable url", "postgres://bob:" + pw + "@[::1/app", "REDACTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{URL: tt.url, Name: "pg"}
			for _, s := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
				assert.NotContains(t, s, pw)
				assert.Contains(t, s, tt.keep)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code string
		want connectors.ErrorKind
	}{
		{"42710", connectors.KindConflict},
		{"23505", connectors.KindConflict},
		{"42704", connectors.KindNotFound},
		{"42501", connectors.KindPermission},
		{"28P01", connectors.KindPermission},
		{"22021", connectors.KindInvalid},
		{"42601", connectors.KindInvalid},
		{"42602", connectors.KindInvalid},
		{"42622", connectors.KindInvalid},
		{"42939", connectors.KindInvalid},
		{"0LP01", connectors.KindInvalid},
		{"2BP01", connectors.KindConflict},
		{"55006", connectors.KindConflict},
		{"57P01", connectors.KindUnavailable},
		{"08006", connectors.KindUnavailable},
		{"53300", connectors.KindUnavailable},
		{"40P01", connectors.KindUnavailable},
		{"57014", connectors.KindTimeout},
		{"XX000", connectors.KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: tt.code, Message: "m"})
			assert.Equal(t, tt.want, classify(err))
		})
	}
	assert.Equal(t, connectors.KindTimeout, classify(fmt.Errorf("x: %w", errDeadline{})))
	assert.Equal(t, connectors.KindUnavailable, classify(errors.New("connection reset")))
}

type errDeadline struct{}

func (errDeadline) Error() string { return "deadline" }
func (errDeadline) Is(target error) bool {
	return target != nil && target.Error() == "context deadline exceeded"
}

func TestFailScrubsSecrets(t *testing.T) {
	c := &Client{name: "pg", secrets: []string{"postgres://u:pw1234@h/db", "pw1234"}}
	err := c.fail("Op", errors.New("dial postgres://u:pw1234@h/db failed, password pw1234"), "connect")
	assert.NotContains(t, err.Error(), "pw1234")
	var ce *connectors.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Op", ce.Op)
}

func TestCheckRoleName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true}, {`x"; DROP ROLE admin; --`, true}, {"José", true}, {" ", true},
		{strings.Repeat("a", 63), true}, {strings.Repeat("a", 64), false},
		{"", false}, {"a\x00", false}, {"a\r", false}, {"a\u009f", false}, {"\xc3", false},
		{"pg_x", false}, {"PG_x", true}, {"public", false}, {"Public", true}, {"none", false},
		{"current_user", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			assert.Equal(t, tt.ok, checkRoleName(tt.name) == nil, "%v", checkRoleName(tt.name))
		})
	}
}

func TestPageTokenRoundTrip(t *testing.T) {
	for _, name := range []string{"a", `x"; --`, "José 山田", strings.Repeat("z", 63)} {
		got, err := decodePageToken(encodePageToken(name))
		require.NoError(t, err)
		assert.Equal(t, name, got)
	}
}

// TestQuoteLiteral asks the server to read back literals built from
// hostile values.
func TestQuoteLiteral(t *testing.T) {
	url := testenv.PGURL(t)
	ctx := testenv.Context(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, s := range []string{"", "'", "''", `\`, `\'`, `'\`, `\\'; DROP ROLE x; --`, "E'x'", "$$", "provisio:{\"a\":\"b\\\"c\"}", "José 山田 🚀", "a\nb\tc", "\u2028"} {
		var got string
		require.NoError(t, conn.QueryRow(ctx, "SELECT "+quoteLiteral(s), pgx.QueryExecModeSimpleProtocol).Scan(&got), "%q", s)
		assert.Equal(t, s, got)
	}
}

func TestPrefixUpperBound(t *testing.T) {
	for _, tc := range []struct {
		prefix, upper string
		ok            bool
	}{
		{"", "", false},
		{"u_", "u`", true},
		{"bench_", "bench`", true},
		{"a\xff", "b", true},
		{"\xff\xff", "", false},
	} {
		upper, ok := prefixUpperBound(tc.prefix)
		if upper != tc.upper || ok != tc.ok {
			t.Errorf("prefixUpperBound(%q) = %q, %v; want %q, %v", tc.prefix, upper, ok, tc.upper, tc.ok)
		}
	}
}
