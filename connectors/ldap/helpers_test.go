package ldap_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/conformance"
	"github.com/provisio-dev/provisio/connectors/ldap"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// The test server, from the same variables as the rest of the project.
var (
	ldapURL      = getenv("LDAP_URL", "ldap://127.0.0.1:3389")
	bindDN       = getenv("LDAP_BIND_DN", "cn=admin,dc=example,dc=com")
	bindPassword = getenv("LDAP_BIND_PASSWORD", "admin")
	baseDN       = getenv("LDAP_BASE_DN", "dc=example,dc=com")
	peopleDN     = "ou=people," + baseDN
	groupsDN     = "ou=groups," + baseDN
)

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func testConfig() ldap.Config {
	return ldap.Config{
		URL:            ldapURL,
		BindDN:         bindDN,
		BindPassword:   bindPassword,
		PeopleDN:       peopleDN,
		GroupsDN:       groupsDN,
		RequestTimeout: 20 * time.Second,
	}
}

// unreachable fails the test with the hint every server-backed test gives.
func unreachable(t *testing.T, err error) {
	t.Helper()
	t.Fatalf("LDAP server at %s is unreachable (%v): run `make stack` (or deployments/slapd/slapd.sh start)", ldapURL, err)
}

// newClient returns a connector for cfg, closed when the test ends.
func newClient(t *testing.T, cfg ldap.Config) *ldap.Client {
	t.Helper()
	c, err := ldap.New(testenv.Context(t), cfg)
	if err != nil {
		if connectors.KindOf(err).Retryable() {
			unreachable(t, err)
		}
		t.Fatalf("ldap.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// adminConn is an out-of-band connection bound as the directory admin, for
// setting up and checking what the connector did.
func adminConn(t *testing.T) *goldap.Conn {
	t.Helper()
	conn, err := goldap.DialURL(ldapURL, goldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		unreachable(t, err)
	}
	conn.SetTimeout(30 * time.Second)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.Bind(bindDN, bindPassword), "admin bind")
	return conn
}

// userDN is how the tests name an account, built independently of the
// connector's own helper.
func userDN(username string) string {
	return "uid=" + goldap.EscapeDN(username) + "," + peopleDN
}

func groupDN(cn string) string {
	return "cn=" + goldap.EscapeDN(cn) + "," + groupsDN
}

// createGroup adds a groupOfNames with members (the placeholder when none)
// and removes it when the test ends.
func createGroup(t *testing.T, conn *goldap.Conn, cn string, members ...string) string {
	t.Helper()
	if len(members) == 0 {
		members = []string{ldap.DefaultPlaceholderMember}
	}
	dn := groupDN(cn)
	add := goldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"top", "groupOfNames"})
	add.Attribute("cn", []string{cn})
	add.Attribute("member", members)
	require.NoError(t, conn.Add(add), "create group %s", cn)
	t.Cleanup(func() {
		if err := conn.Del(goldap.NewDelRequest(dn, nil)); err != nil {
			t.Logf("cleanup of group %s: %v", cn, err)
		}
	})
	return dn
}

// members reads a group's member values.
func members(t *testing.T, conn *goldap.Conn, gdn string) []string {
	t.Helper()
	res, err := conn.Search(goldap.NewSearchRequest(gdn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"member"}, nil))
	require.NoError(t, err)
	require.Len(t, res.Entries, 1)
	return res.Entries[0].GetAttributeValues("member")
}

// login sets a fresh password on username's entry as admin, out of band,
// and binds as the user with it.
func login(conn *goldap.Conn) func(ctx context.Context, username string) error {
	return func(ctx context.Context, username string) error {
		password := testenv.RandomLetters(20)
		// ppolicy removes pwdAccountLockedTime whenever a password changes
		// (even when the same modify rewrites it), so the lock is read first
		// and written back afterwards: logging in must never unlock.
		res, err := conn.Search(goldap.NewSearchRequest(userDN(username), goldap.ScopeBaseObject, goldap.NeverDerefAliases,
			0, 0, false, "(objectClass=*)", []string{"pwdAccountLockedTime"}, nil))
		if err != nil || len(res.Entries) != 1 {
			return fmt.Errorf("read %s out of band: %w", username, err)
		}
		mod := goldap.NewModifyRequest(userDN(username), nil)
		mod.Replace("userPassword", []string{password})
		if err := conn.Modify(mod); err != nil {
			return fmt.Errorf("set password out of band: %w", err)
		}
		if locked := res.Entries[0].GetAttributeValues("pwdAccountLockedTime"); len(locked) > 0 {
			mod := goldap.NewModifyRequest(userDN(username), nil)
			mod.Replace("pwdAccountLockedTime", locked)
			if err := conn.Modify(mod); err != nil {
				return fmt.Errorf("restore lock out of band: %w", err)
			}
		}
		user, err := goldap.DialURL(ldapURL)
		if err != nil {
			return err
		}
		defer user.Close()
		user.SetTimeout(10 * time.Second)
		if err := user.Bind(userDN(username), password); err != nil {
			return fmt.Errorf("%w: %w", conformance.ErrLoginFailed, err)
		}
		return nil
	}
}

// proxy is a TCP proxy in front of the test server that counts the bytes
// each way and can cut every open connection, to observe what the connector
// sends and to simulate a dropped connection.
type proxy struct {
	ln       net.Listener
	target   string
	up, down atomic.Int64
	live     atomic.Int64 // client connections not closed yet

	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T) *proxy {
	t.Helper()
	u, err := url.Parse(ldapURL)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: u.Host}
	t.Cleanup(func() { _ = ln.Close(); p.dropAll() })
	go p.serve()
	return p
}

func (p *proxy) url() string { return "ldap://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.live.Add(1)
		go func() {
			p.pipe(server, client, &p.up) // returns when the client hangs up
			p.live.Add(-1)
		}()
		go p.pipe(client, server, &p.down)
	}
}

func (p *proxy) pipe(dst, src net.Conn, n *atomic.Int64) {
	buf := make([]byte, 32*1024)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			n.Add(int64(k))
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

// dropAll closes every proxied connection, as a server restart or a
// firewall idle timeout would.
func (p *proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) reset() { p.up.Store(0); p.down.Store(0) }
