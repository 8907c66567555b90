package ldap

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/provisio-dev/provisio/connectors"
)

// pool hands out bound connections, at most size of them open at once.
// A connection holds a slot from dial until it is discarded; idle ones wait
// in idle, which has room for every slot so put never blocks.
type pool struct {
	dial  func(ctx context.Context) (*goldap.Conn, error)
	slots chan struct{}
	idle  chan *goldap.Conn

	mu     sync.Mutex
	closed bool
}

func newPool(size int, dial func(ctx context.Context) (*goldap.Conn, error)) *pool {
	return &pool{
		dial:  dial,
		slots: make(chan struct{}, size),
		idle:  make(chan *goldap.Conn, size),
	}
}

// get returns an idle connection (reused=true) or dials a new one, waiting
// for a free slot when size connections are in use.
func (p *pool) get(ctx context.Context) (conn *goldap.Conn, reused bool, err error) {
	for {
		if p.isClosed() {
			return nil, false, connectors.Errorf(connectors.KindUnavailable, appName, "pool", nil, "client is closed")
		}
		select {
		case c := <-p.idle:
			if c.IsClosing() {
				p.discard(c)
				continue
			}
			return c, true, nil
		default:
		}
		select {
		case c := <-p.idle:
			if c.IsClosing() {
				p.discard(c)
				continue
			}
			return c, true, nil
		case p.slots <- struct{}{}:
			c, err := p.dial(ctx)
			if err != nil {
				<-p.slots
				return nil, false, err
			}
			return c, false, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// put returns a healthy connection for reuse.
func (p *pool) put(c *goldap.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || c.IsClosing() {
		_ = c.Close()
		<-p.slots
		return
	}
	p.idle <- c
}

// discard closes a connection that must not be reused and frees its slot.
func (p *pool) discard(c *goldap.Conn) {
	_ = c.Close()
	<-p.slots
}

func (p *pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// close closes idle connections now; connections in use are closed when
// they are returned.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for {
		select {
		case c := <-p.idle:
			_ = c.Close()
			<-p.slots
		default:
			return
		}
	}
}

// dialer opens and binds connections for one Config.
type dialer struct {
	cfg Config
	url *url.URL
}

// dial connects, upgrades to TLS when asked and binds as cfg.BindDN, all
// within cfg.DialTimeout and ctx.
func (d dialer) dial(ctx context.Context) (*goldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	defer cancel()
	host, port := d.url.Hostname(), d.url.Port()
	tlsMode := d.url.Scheme == "ldaps"
	if port == "" {
		port = goldap.DefaultLdapPort
		if tlsMode {
			port = goldap.DefaultLdapsPort
		}
	}
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, classifyf("connect", err, "cannot connect to %s", d.url.Redacted())
	}
	if tlsMode {
		tc := tls.Client(raw, d.cfg.tlsConfig(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, classifyf("connect", err, "TLS handshake with %s failed", d.url.Redacted())
		}
		raw = tc
	}
	conn := goldap.NewConn(raw, tlsMode)
	conn.Start()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetTimeout(time.Until(dl))
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	fail := func(err error, format string, args ...any) (*goldap.Conn, error) {
		_ = conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, classifyf("connect", err, format, args...)
	}
	if d.cfg.StartTLS {
		if err := conn.StartTLS(d.cfg.tlsConfig(host)); err != nil {
			return fail(err, "StartTLS with %s failed", d.url.Redacted())
		}
	}
	if d.cfg.BindDN != "" {
		if err := conn.Bind(d.cfg.BindDN, d.cfg.BindPassword); err != nil {
			return fail(err, "bind as %q failed", d.cfg.BindDN)
		}
	}
	if ctx.Err() != nil {
		return fail(ctx.Err(), "connecting to %s", d.url.Redacted())
	}
	return conn, nil
}
