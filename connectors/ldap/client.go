package ldap

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/provisio-dev/provisio/connectors"
)

var _ connectors.Connector = (*Client)(nil)

// Client is the LDAP connector. It is safe for concurrent use; Close it to
// release its pooled connections and its listings' cursors.
type Client struct {
	cfg     Config
	pool    *pool
	dial    func(ctx context.Context) (*goldap.Conn, error)
	cursors *cursorStore
	// sortRetryAt (Unix nanoseconds) is when to try server-side sorting
	// again after the directory would not sort.
	sortRetryAt atomic.Int64
}

// New checks cfg, connects and binds once so that a wrong URL or credential
// fails here rather than on the first provisioning call, and returns a
// Client whose pool keeps that connection.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	u, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	dial := dialer{cfg: cfg, url: u}.dial
	c := &Client{cfg: cfg, pool: newPool(cfg.PoolSize, dial), dial: dial, cursors: newCursorStore(cfg.ListCursors, cfg.ListCursorIdle)}
	conn, _, err := c.pool.get(ctx)
	if err != nil {
		return nil, classifyf("New", err, "connecting to %s", u.Redacted())
	}
	c.pool.put(conn)
	return c, nil
}

// Name implements connectors.Connector.
func (c *Client) Name() string { return appName }

// Close implements connectors.Connector.
func (c *Client) Close() error {
	c.cursors.close()
	c.pool.close()
	return nil
}

// run calls fn with a pooled connection, bounding each request by
// RequestTimeout and ctx. A connection that fails at the network level is
// discarded; when it came from the pool it may simply have gone stale, so fn
// is retried once on a fresh one (every operation is idempotent). Errors are
// classified for op.
func (c *Client) run(ctx context.Context, op string, fn func(conn *goldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return classify(op, err)
		}
		conn, reused, err := c.pool.get(ctx)
		if err != nil {
			return classify(op, err)
		}
		timeout := c.cfg.RequestTimeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = time.Until(dl)
		}
		if timeout <= 0 {
			c.pool.put(conn)
			return classify(op, context.DeadlineExceeded)
		}
		conn.SetTimeout(timeout)
		// go-ldap requests take no context: closing the connection is what
		// aborts one in flight when ctx ends.
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		err = fn(conn)
		if !stop() {
			c.pool.discard(conn)
			if err == nil {
				return nil // finished just as ctx ended
			}
			return classify(op, ctx.Err())
		}
		if err != nil && (conn.IsClosing() || isConnError(err)) {
			c.pool.discard(conn)
			if reused && attempt == 0 && !isTimeout(err) {
				continue
			}
			return classify(op, err)
		}
		c.pool.put(conn)
		return classify(op, err)
	}
}

// Attributes the connector reads and writes on accounts.
const (
	attrUID            = "uid"
	attrCN             = "cn"
	attrSN             = "sn"
	attrGivenName      = "givenName"
	attrDisplayName    = "displayName"
	attrMail           = "mail"
	attrEmployeeNumber = "employeeNumber"
	attrMember         = "member"
	attrObjectClass    = "objectClass"
	attrLockedTime     = "pwdAccountLockedTime"
	attrUAC            = "userAccountControl"

	// lockedForever is ppolicy's "locked until an administrator unlocks".
	lockedForever = "000001010000Z"
	// uacDisabled is Active Directory's ACCOUNTDISABLE bit; uacDisabledUser
	// is NORMAL_ACCOUNT|ACCOUNTDISABLE.
	uacDisabled     = 0x2
	uacDisabledUser = "514"
)

// managedAttrs returns the descriptive attributes EnsureAccount keeps in
// sync, in the order they are compared.
func managedAttrs() []string {
	return []string{attrCN, attrSN, attrGivenName, attrDisplayName, attrMail, attrEmployeeNumber}
}

// stateAttr is the attribute that records the disabled state.
func (c *Client) stateAttr() string {
	if c.cfg.DisableStrategy == StrategyAD {
		return attrUAC
	}
	return attrLockedTime
}

func (c *Client) personAttrs() []string {
	return []string{attrObjectClass, attrUID, attrCN, attrSN, attrGivenName, attrDisplayName, attrMail, attrEmployeeNumber, c.stateAttr()}
}

// userDN validates username and returns its entry's DN.
func (c *Client) userDN(op, username string) (string, error) {
	if err := validateName(username); err != nil {
		return "", connectors.Errorf(connectors.KindInvalid, appName, op, nil, "username %q %v", truncate(username), err)
	}
	return buildDN(attrUID, username, c.cfg.PeopleDN), nil
}

// truncate shortens a refused value before it goes into an error message.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// lookup reads the account entry of username at dn. It returns nil, nil when
// no entry exists there, and a Conflict when an entry exists but is not an
// inetOrgPerson or its uid is spelled differently (LDAP matched it case- or
// space-insensitively), so callers never act on another account.
func (c *Client) lookup(conn *goldap.Conn, op, username, dn string, attrs []string) (*goldap.Entry, error) {
	req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", append([]string{attrObjectClass}, attrs...), nil)
	res, err := conn.Search(req)
	if hasCode(err, goldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, classifyf(op, err, "reading account %q", username)
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	e := res.Entries[0]
	if !hasValueFold(e.GetAttributeValues(attrObjectClass), "inetOrgPerson") {
		return nil, connectors.Errorf(connectors.KindConflict, appName, op, nil,
			"entry %s exists but is not an inetOrgPerson account", e.DN)
	}
	if attr, value, ok := firstRDN(e.DN); !ok || !strings.EqualFold(attr, attrUID) || value != username {
		return nil, connectors.Errorf(connectors.KindConflict, appName, op, nil,
			"username %q matches existing entry %s, which LDAP treats as the same name; usernames must be spelled exactly", username, e.DN)
	}
	return e, nil
}

func hasValueFold(values []string, want string) bool {
	for _, v := range values {
		if strings.EqualFold(v, want) {
			return true
		}
	}
	return false
}

func notFound(op, username string) error {
	return connectors.Errorf(connectors.KindNotFound, appName, op, nil, "account %q does not exist", username)
}

// accountFrom turns an entry read with personAttrs into an Account without
// entitlements.
func (c *Client) accountFrom(e *goldap.Entry, username string) connectors.Account {
	return connectors.Account{
		Username:    username,
		EmployeeID:  e.GetAttributeValue(attrEmployeeNumber),
		GivenName:   e.GetAttributeValue(attrGivenName),
		FamilyName:  e.GetAttributeValue(attrSN),
		DisplayName: e.GetAttributeValue(attrDisplayName),
		Email:       e.GetAttributeValue(attrMail),
		Disabled:    c.isDisabled(e),
	}
}

// desired returns the managed attribute values for acct; "" means absent.
// cn and sn are mandatory in the schema and fall back to other names.
func desired(acct connectors.Account) map[string]string {
	sn := acct.FamilyName
	if sn == "" {
		sn = acct.Username
	}
	cn := acct.DisplayName
	if cn == "" {
		cn = strings.TrimSpace(acct.GivenName + " " + acct.FamilyName)
	}
	if cn == "" {
		cn = acct.Username
	}
	return map[string]string{
		attrCN:             cn,
		attrSN:             sn,
		attrGivenName:      acct.GivenName,
		attrDisplayName:    acct.DisplayName,
		attrMail:           acct.Email,
		attrEmployeeNumber: acct.EmployeeID,
	}
}

// EnsureAccount implements connectors.Connector. An existing account's
// disabled state is never changed; only attributes that differ are replaced.
func (c *Client) EnsureAccount(ctx context.Context, req connectors.EnsureAccountRequest) (connectors.EnsureAccountResponse, error) {
	const op = "EnsureAccount"
	acct := req.Account
	dn, err := c.userDN(op, acct.Username)
	if err != nil {
		return connectors.EnsureAccountResponse{}, err
	}
	if acct.EmployeeID == "" {
		return connectors.EnsureAccountResponse{}, connectors.Errorf(connectors.KindInvalid, appName, op, nil, "account %q has no employee ID", acct.Username)
	}
	want := desired(acct)
	var resp connectors.EnsureAccountResponse
	err = c.run(ctx, op, func(conn *goldap.Conn) error {
		resp = connectors.EnsureAccountResponse{}
		e, err := c.lookup(conn, op, acct.Username, dn, managedAttrs())
		if err != nil {
			return err
		}
		if e == nil {
			err := conn.Add(c.addRequest(dn, acct.Username, want, req.Disabled))
			if err == nil {
				resp.Created = true
				return nil
			}
			if !hasCode(err, goldap.LDAPResultEntryAlreadyExists) {
				return classifyf(op, err, "creating account %q", acct.Username)
			}
			// Created concurrently: fall through and converge its attributes.
			if e, err = c.lookup(conn, op, acct.Username, dn, managedAttrs()); err != nil {
				return err
			}
			if e == nil {
				return connectors.Errorf(connectors.KindConflict, appName, op, nil, "entry %s appeared and vanished while creating it", dn)
			}
		}
		mod := goldap.NewModifyRequest(dn, nil)
		for _, attr := range managedAttrs() {
			cur, v := e.GetAttributeValues(attr), want[attr]
			switch {
			case v == "" && len(cur) > 0:
				mod.Delete(attr, nil)
			case v != "" && (len(cur) != 1 || cur[0] != v):
				mod.Replace(attr, []string{v})
			}
		}
		if len(mod.Changes) == 0 {
			return nil
		}
		if err := conn.Modify(mod); err != nil {
			return classifyf(op, err, "updating account %q", acct.Username)
		}
		resp.Updated = true
		return nil
	})
	return resp, err
}

func (c *Client) addRequest(dn, username string, want map[string]string, disabled bool) *goldap.AddRequest {
	add := goldap.NewAddRequest(dn, nil)
	add.Attribute(attrObjectClass, []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
	add.Attribute(attrUID, []string{username})
	for _, attr := range managedAttrs() {
		if v := want[attr]; v != "" {
			add.Attribute(attr, []string{v})
		}
	}
	if disabled {
		if c.cfg.DisableStrategy == StrategyAD {
			add.Attribute(attrUAC, []string{uacDisabledUser})
		} else {
			add.Attribute(attrLockedTime, []string{lockedForever})
		}
	}
	return add
}

// GetAccount implements connectors.Connector.
func (c *Client) GetAccount(ctx context.Context, req connectors.AccountRequest) (connectors.Account, error) {
	const op = "GetAccount"
	dn, err := c.userDN(op, req.Username)
	if err != nil {
		return connectors.Account{}, err
	}
	var acct connectors.Account
	err = c.run(ctx, op, func(conn *goldap.Conn) error {
		e, err := c.lookup(conn, op, req.Username, dn, c.personAttrs())
		if err != nil {
			return err
		}
		if e == nil {
			return notFound(op, req.Username)
		}
		acct = c.accountFrom(e, req.Username)
		acct.Entitlements, err = c.groupsOf(conn, op, dn)
		return err
	})
	return acct, err
}

// GrantEntitlement implements connectors.Connector with one modify that adds
// a single member value.
func (c *Client) GrantEntitlement(ctx context.Context, req connectors.EntitlementRequest) (connectors.EntitlementResponse, error) {
	const op = "GrantEntitlement"
	dn, err := c.userDN(op, req.Username)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	if err := validateGroup(op, req.Entitlement); err != nil {
		return connectors.EntitlementResponse{}, err
	}
	var resp connectors.EntitlementResponse
	err = c.run(ctx, op, func(conn *goldap.Conn) error {
		// Directories rarely check that member values name real entries,
		// so the account's existence is checked here.
		e, err := c.lookup(conn, op, req.Username, dn, nil)
		if err != nil {
			return err
		}
		if e == nil {
			return notFound(op, req.Username)
		}
		gdn, err := c.findGroup(conn, op, req.Entitlement)
		if err != nil {
			return err
		}
		mod := goldap.NewModifyRequest(gdn, nil)
		mod.Add(attrMember, []string{dn})
		err = conn.Modify(mod)
		switch {
		case err == nil:
			resp.Changed = true
		case hasCode(err, goldap.LDAPResultAttributeOrValueExists):
			resp.Changed = false
		default:
			return classifyf(op, err, "adding %q to group %q", req.Username, req.Entitlement)
		}
		return nil
	})
	return resp, err
}

// RevokeEntitlement implements connectors.Connector with one modify that
// deletes a single member value. Revoking from an account that no longer
// exists still removes a leftover member value.
func (c *Client) RevokeEntitlement(ctx context.Context, req connectors.EntitlementRequest) (connectors.EntitlementResponse, error) {
	const op = "RevokeEntitlement"
	dn, err := c.userDN(op, req.Username)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	if err := validateGroup(op, req.Entitlement); err != nil {
		return connectors.EntitlementResponse{}, err
	}
	var resp connectors.EntitlementResponse
	err = c.run(ctx, op, func(conn *goldap.Conn) error {
		// Guards against removing a differently spelled account's value.
		if _, err := c.lookup(conn, op, req.Username, dn, nil); err != nil {
			return err
		}
		gdn, err := c.findGroup(conn, op, req.Entitlement)
		if err != nil {
			return err
		}
		resp.Changed, err = c.removeMember(conn, op, gdn, dn)
		return err
	})
	return resp, err
}

func validateGroup(op, name string) error {
	if err := validateName(name); err != nil {
		return connectors.Errorf(connectors.KindInvalid, appName, op, nil, "entitlement %q %v", truncate(name), err)
	}
	return nil
}

// findGroup returns the DN of the one groupOfNames under GroupsDN whose cn
// is name. Only the DN is read, never the member list.
func (c *Client) findGroup(conn *goldap.Conn, op, name string) (string, error) {
	req := goldap.NewSearchRequest(c.cfg.GroupsDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, 0, false,
		"(&(objectClass=groupOfNames)"+buildFilter(attrCN, name)+")", []string{"1.1"}, nil)
	res, err := conn.Search(req)
	if err != nil && !hasCode(err, goldap.LDAPResultSizeLimitExceeded) {
		return "", classifyf(op, err, "looking up group %q", name)
	}
	switch {
	case res == nil || len(res.Entries) == 0:
		return "", connectors.Errorf(connectors.KindNotFound, appName, op, nil, "entitlement %q: no groupOfNames with that cn under %s", name, c.cfg.GroupsDN)
	case len(res.Entries) > 1:
		return "", connectors.Errorf(connectors.KindConflict, appName, op, nil, "entitlement %q: several groups under %s have that cn", name, c.cfg.GroupsDN)
	}
	return res.Entries[0].DN, nil
}

// removeMember deletes the single member value dn from group gdn and reports
// whether it was there. groupOfNames must keep one member, so when dn is the
// last one the placeholder is added in the same, atomic modify.
func (c *Client) removeMember(conn *goldap.Conn, op, gdn, dn string) (bool, error) {
	for range 3 {
		mod := goldap.NewModifyRequest(gdn, nil)
		mod.Delete(attrMember, []string{dn})
		err := conn.Modify(mod)
		switch {
		case err == nil:
			return true, nil
		case hasCode(err, goldap.LDAPResultNoSuchAttribute):
			return false, nil
		case !hasCode(err, goldap.LDAPResultObjectClassViolation):
			return false, classifyf(op, err, "removing member from %s", gdn)
		}
		mod = goldap.NewModifyRequest(gdn, nil)
		mod.Add(attrMember, []string{c.cfg.PlaceholderMember})
		mod.Delete(attrMember, []string{dn})
		err = conn.Modify(mod)
		switch {
		case err == nil:
			return true, nil
		case hasCode(err, goldap.LDAPResultNoSuchAttribute):
			return false, nil
		case !hasCode(err, goldap.LDAPResultAttributeOrValueExists):
			return false, classifyf(op, err, "removing the last member from %s", gdn)
		}
		// The placeholder appeared concurrently: a plain delete works now.
	}
	return false, connectors.Errorf(connectors.KindUnavailable, appName, op, nil, "group %s kept changing while removing a member", gdn)
}

// groupsOf returns the sorted cns of the groups under GroupsDN listing dn
// as a member. The server matches member values, so differently escaped
// spellings of dn are found too.
func (c *Client) groupsOf(conn *goldap.Conn, op, dn string) ([]string, error) {
	_, names, err := c.groupsWithMember(conn, op, dn, []string{attrCN})
	return names, err
}

// groupsWithMember searches the groups listing dn and returns their DNs and
// their names (the cn of the RDN, else the first cn), sorted by name.
func (c *Client) groupsWithMember(conn *goldap.Conn, op, dn string, attrs []string) (dns, names []string, err error) {
	req := goldap.NewSearchRequest(c.cfg.GroupsDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=groupOfNames)"+buildFilter(attrMember, dn)+")", attrs, nil)
	res, err := conn.Search(req)
	if err != nil {
		return nil, nil, classifyf(op, err, "listing groups of %s", dn)
	}
	type group struct{ dn, name string }
	groups := make([]group, 0, len(res.Entries))
	for _, e := range res.Entries {
		groups = append(groups, group{e.DN, groupName(e)})
	}
	sortBy(groups, func(g group) string { return g.name })
	for _, g := range groups {
		dns = append(dns, g.dn)
		if len(names) == 0 || names[len(names)-1] != g.name {
			names = append(names, g.name)
		}
	}
	return dns, names, nil
}

// DisableAccount implements connectors.Connector by locking the account
// with the configured DisableStrategy. LDAP has no sessions: a bind is
// checked when it happens, so SessionsEnded is always 0.
func (c *Client) DisableAccount(ctx context.Context, req connectors.AccountRequest) (connectors.DisableResponse, error) {
	const op = "DisableAccount"
	var resp connectors.DisableResponse
	changed, err := c.setDisabled(ctx, op, req.Username, true)
	resp.Changed = changed
	return resp, err
}

// EnableAccount implements connectors.Connector by lifting the lock that
// DisableAccount set; other locks (e.g. ppolicy's own lockout after failed
// binds, which has a real timestamp) are left alone.
func (c *Client) EnableAccount(ctx context.Context, req connectors.AccountRequest) (connectors.EnableResponse, error) {
	const op = "EnableAccount"
	changed, err := c.setDisabled(ctx, op, req.Username, false)
	return connectors.EnableResponse{Changed: changed}, err
}

func (c *Client) isDisabled(e *goldap.Entry) bool {
	if c.cfg.DisableStrategy == StrategyAD {
		uac, ok := parseUAC(e.GetAttributeValue(attrUAC))
		return ok && uac&uacDisabled != 0
	}
	return e.GetAttributeValue(attrLockedTime) == lockedForever
}

func (c *Client) setDisabled(ctx context.Context, op, username string, disable bool) (bool, error) {
	dn, err := c.userDN(op, username)
	if err != nil {
		return false, err
	}
	var changed bool
	err = c.run(ctx, op, func(conn *goldap.Conn) error {
		changed = false
		for range 3 {
			e, err := c.lookup(conn, op, username, dn, []string{c.stateAttr()})
			if err != nil {
				return err
			}
			if e == nil {
				return notFound(op, username)
			}
			if c.isDisabled(e) == disable {
				return nil
			}
			mod := c.stateChange(dn, e, disable)
			err = conn.Modify(mod)
			switch {
			case err == nil:
				changed = true
				return nil
			case hasCode(err, goldap.LDAPResultNoSuchAttribute):
				// The value we meant to replace changed under us: re-read.
				continue
			default:
				return classifyf(op, err, "changing the enabled state of %q", username)
			}
		}
		return connectors.Errorf(connectors.KindUnavailable, appName, op, nil, "account %q kept changing", username)
	})
	return changed, err
}

// stateChange builds the modify that flips e's disabled state. Removals name
// the exact old value, so a concurrent change fails the modify with
// noSuchAttribute instead of being overwritten.
func (c *Client) stateChange(dn string, e *goldap.Entry, disable bool) *goldap.ModifyRequest {
	mod := goldap.NewModifyRequest(dn, nil)
	if c.cfg.DisableStrategy == StrategyAD {
		old := e.GetAttributeValue(attrUAC)
		uac, _ := parseUAC(old)
		if disable {
			uac |= uacDisabled
		} else {
			uac &^= uacDisabled
		}
		if old != "" {
			mod.Delete(attrUAC, []string{old})
			mod.Add(attrUAC, []string{formatUAC(uac)})
		} else {
			mod.Replace(attrUAC, []string{formatUAC(uac)})
		}
		return mod
	}
	if disable {
		// A temporary lockout has a real timestamp; replace it with the
		// permanent one.
		mod.Replace(attrLockedTime, []string{lockedForever})
	} else {
		mod.Delete(attrLockedTime, []string{lockedForever})
	}
	return mod
}

// DeleteAccount implements connectors.Connector. It first removes the
// account from every group under GroupsDN listing it, so no dangling member
// value is left, then deletes the entry. A missing account is not an error;
// leftover member values of a missing account are still removed.
func (c *Client) DeleteAccount(ctx context.Context, req connectors.AccountRequest) (connectors.DeleteResponse, error) {
	const op = "DeleteAccount"
	dn, err := c.userDN(op, req.Username)
	if err != nil {
		return connectors.DeleteResponse{}, err
	}
	var resp connectors.DeleteResponse
	err = c.run(ctx, op, func(conn *goldap.Conn) error {
		resp.Deleted = false
		e, err := c.lookup(conn, op, req.Username, dn, nil)
		if err != nil {
			return err
		}
		groups, _, err := c.groupsWithMember(conn, op, dn, []string{attrCN})
		if err != nil {
			return err
		}
		for _, gdn := range groups {
			if _, err := c.removeMember(conn, op, gdn, dn); err != nil {
				return err
			}
		}
		if e == nil {
			return nil
		}
		err = conn.Del(goldap.NewDelRequest(dn, nil))
		switch {
		case err == nil:
			resp.Deleted = true
		case hasCode(err, goldap.LDAPResultNoSuchObject):
		default:
			return classifyf(op, err, "deleting account %q", req.Username)
		}
		return nil
	})
	return resp, err
}
