package seed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/ldap"
	"github.com/provisio-dev/provisio/connectors/postgres"
	"github.com/provisio-dev/provisio/connectors/scim"
	"github.com/provisio-dev/provisio/internal/scimapp/scimapptest"
	"github.com/provisio-dev/provisio/internal/seed"
	"github.com/provisio-dev/provisio/internal/testenv"
	"github.com/provisio-dev/provisio/policy"
)

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

var (
	ldapURL  = getenv("LDAP_URL", "ldap://127.0.0.1:3389")
	bindDN   = getenv("LDAP_BIND_DN", "cn=admin,dc=example,dc=com")
	bindPW   = getenv("LDAP_BIND_PASSWORD", "admin")
	groupsDN = "ou=groups," + getenv("LDAP_BASE_DN", "dc=example,dc=com")
	peopleDN = "ou=people," + getenv("LDAP_BASE_DN", "dc=example,dc=com")
)

// stack is the three real connectors plus out-of-band access to check and
// clean up what they created.
type stack struct {
	conns map[string]connectors.Connector
	ldap  *goldap.Conn
	pg    *pgx.Conn
	scim  *scimapptest.Server
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := testenv.Context(t)
	s := &stack{conns: map[string]connectors.Connector{}}

	lc, err := ldap.New(ctx, ldap.Config{URL: ldapURL, BindDN: bindDN, BindPassword: bindPW, PeopleDN: peopleDN, GroupsDN: groupsDN})
	if err != nil {
		t.Fatalf("LDAP at %s is unreachable (%v): run `make stack`", ldapURL, err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	s.conns["ldap"] = lc
	s.ldap, err = goldap.DialURL(ldapURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.ldap.Close() })
	require.NoError(t, s.ldap.Bind(bindDN, bindPW))

	pgURL := scimapptest.PGURL()
	pc, err := postgres.New(ctx, postgres.Config{URL: pgURL})
	if err != nil {
		t.Fatalf("PostgreSQL at PG_URL is unreachable (%v): run `make stack`", err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	s.conns["postgres"] = pc
	s.pg, err = pgx.Connect(ctx, pgURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.pg.Close(context.Background()) })

	// The real demo SCIM app, in-process, in a schema dropped afterwards.
	s.scim = scimapptest.Start(t, scimapptest.Options{})
	sc, err := scim.New(scim.Config{BaseURL: s.scim.URL, Token: s.scim.Token, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sc.Close() })
	s.conns["scim"] = sc
	return s
}

// cleanup removes the LDAP groups and PostgreSQL roles named when the test
// ends (the SCIM app's schema is dropped by scimapptest).
func (s *stack) cleanup(t *testing.T, ldapGroups, pgRoles []string) {
	t.Cleanup(func() {
		for _, g := range ldapGroups {
			err := s.ldap.Del(goldap.NewDelRequest("cn="+goldap.EscapeDN(g)+","+groupsDN, nil))
			if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
				t.Logf("cleanup of LDAP group %s: %v", g, err)
			}
		}
		for _, r := range pgRoles {
			if _, err := s.pg.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize()); err != nil {
				t.Logf("cleanup of role %s: %v", r, err)
			}
		}
	})
}

func (s *stack) ldapGroup(t *testing.T, cn string) (exists bool, description string) {
	t.Helper()
	res, err := s.ldap.Search(goldap.NewSearchRequest(groupsDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=groupOfNames)(cn="+goldap.EscapeFilter(cn)+"))", []string{"description"}, nil))
	require.NoError(t, err)
	if len(res.Entries) != 1 {
		return false, ""
	}
	return true, res.Entries[0].GetAttributeValue("description")
}

func (s *stack) pgGroup(t *testing.T, name string) bool {
	t.Helper()
	var n int
	require.NoError(t, s.pg.QueryRow(testenv.Context(t), `SELECT count(*) FROM pg_roles WHERE rolname = $1 AND NOT rolcanlogin`, name).Scan(&n))
	return n == 1
}

func (s *stack) scimGroup(t *testing.T, name string) bool {
	t.Helper()
	// Asked over HTTP, outside the connector under test.
	q := url.Values{"filter": {`displayName eq "` + name + `"`}}
	req, err := http.NewRequestWithContext(testenv.Context(t), http.MethodGet, s.scim.URL+"/Groups?"+q.Encode(), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.scim.Token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var list struct{ TotalResults int }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	return list.TotalResults == 1
}

// logs collects seed's log lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) log(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

// noCatalog hides EnsureEntitlement of a real connector and renames it: a
// connector that cannot create entitlements.
type noCatalog struct {
	connectors.Connector
	name string
}

func (n noCatalog) Name() string { return n.name }

func parse(t *testing.T, yaml string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("seed_test.yaml", []byte(yaml))
	require.NoError(t, err)
	return p
}

func TestEntitlements(t *testing.T) {
	s := newStack(t)
	p := testenv.RandomLetters(8)
	vpn, hr, analytics, billing, auditors := p+"-vpn", p+"-hr", p+"_analytics_read", p+"_billing", p+"-auditors"
	s.cleanup(t, []string{vpn, hr}, []string{analytics, billing})
	s.conns["manual"] = noCatalog{Connector: s.conns["ldap"], name: "manual"}

	pol := parse(t, fmt.Sprintf(`schema: 1
applications:
  - name: ldap
    connector: ldap
    owner: E100001
    entitlements:
      - {name: %[1]s, risk: medium, description: Remote network access}
      - {name: %[2]s, risk: low}
  - name: postgres
    connector: postgres
    owner: E100001
    entitlements:
      - {name: %[3]s, risk: medium, description: Read-only analytics}
      - {name: %[4]s, risk: high}
  - name: scim
    connector: scim
    owner: E100001
    entitlements:
      - {name: %[5]s, risk: low}
      - {name: engineering, risk: low}
  - name: manual
    connector: ldap
    owner: E100001
    entitlements:
      - {name: %[1]s-manual, risk: low}
`, vpn, hr, analytics, billing, auditors))

	var l logs
	require.NoError(t, seed.Entitlements(testenv.Context(t), pol, s.conns, l.log))
	assert.Equal(t, []string{
		"ldap/" + hr + ": created",
		"ldap/" + vpn + ": created",
		"manual: skipped (1 declared): its connector cannot create entitlements, so create them in the application",
		"postgres/" + analytics + ": created",
		"postgres/" + billing + ": created",
		"scim/" + auditors + ": created",
		"entitlements: 5 created, 1 already present, 0 failed; 1 applications skipped",
	}, l.take(), "applications and entitlements in name order; the SCIM app seeds engineering itself")

	ok, desc := s.ldapGroup(t, vpn)
	assert.True(t, ok)
	assert.Equal(t, "Remote network access", desc)
	ok, _ = s.ldapGroup(t, hr)
	assert.True(t, ok)
	ok, _ = s.ldapGroup(t, vpn+"-manual")
	assert.False(t, ok, "the skipped application got nothing")
	assert.True(t, s.pgGroup(t, analytics))
	assert.True(t, s.pgGroup(t, billing))
	assert.True(t, s.scimGroup(t, auditors))

	require.NoError(t, seed.Entitlements(testenv.Context(t), pol, s.conns, l.log))
	assert.Equal(t, []string{
		"manual: skipped (1 declared): its connector cannot create entitlements, so create them in the application",
		"entitlements: 0 created, 6 already present, 0 failed; 1 applications skipped",
	}, l.take(), "a second run creates nothing")
}

func TestEntitlementsReportsEveryFailure(t *testing.T) {
	s := newStack(t)
	p := testenv.RandomLetters(8)
	good, long := p+"-good", p+strings.Repeat("x", 70)
	s.cleanup(t, []string{good, long}, nil)

	pol := parse(t, fmt.Sprintf(`schema: 1
applications:
  - name: ghost
    connector: scim
    owner: E100001
    entitlements:
      - {name: anything, risk: low}
  - name: ldap
    connector: ldap
    owner: E100001
    entitlements:
      - {name: %[1]s, risk: low}
      - {name: %[2]s, risk: low}
  - name: postgres
    connector: postgres
    owner: E100001
    entitlements:
      - {name: pg_monitor, risk: low}
`, good, long))

	var l logs
	err := seed.Entitlements(testenv.Context(t), pol, s.conns, l.log)
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, `application "ghost": no connector is named "ghost"`)
	assert.Contains(t, msg, "ldap/"+long+": ")
	assert.Contains(t, msg, "postgres/pg_monitor: ")
	var ce *connectors.Error
	assert.ErrorAs(t, err, &ce, "connector errors stay in the chain, so their kind can be read")
	ok, _ := s.ldapGroup(t, good)
	assert.True(t, ok, "one failure does not stop the rest")
	assert.Contains(t, l.take(), "entitlements: 1 created, 0 already present, 3 failed; 0 applications skipped")
}

func TestEntitlementsStopsWhenCancelled(t *testing.T) {
	s := newStack(t)
	name := testenv.RandomLetters(8) + "-never"
	s.cleanup(t, []string{name}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pol := parse(t, `schema: 1
applications:
  - name: ldap
    connector: ldap
    owner: E100001
    entitlements:
      - {name: `+name+`, risk: low}
`)
	err := seed.Entitlements(ctx, pol, s.conns, nil)
	require.ErrorIs(t, err, context.Canceled)
	ok, _ := s.ldapGroup(t, name)
	assert.False(t, ok)
}

func TestEntitlementsRefusesAmbiguousConnectors(t *testing.T) {
	s := newStack(t)
	s.conns["ldap-again"] = noCatalog{Connector: s.conns["ldap"], name: "ldap"}
	name := testenv.RandomLetters(8) + "-never"
	s.cleanup(t, []string{name}, nil)
	pol := parse(t, `schema: 1
applications:
  - name: ldap
    connector: ldap
    owner: E100001
    entitlements:
      - {name: `+name+`, risk: low}
`)
	err := seed.Entitlements(testenv.Context(t), pol, s.conns, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `two connectors are named "ldap"`)
}
