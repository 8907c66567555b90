package ldap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/provisio-dev/provisio/connectors"
)

// Verify implements connectors.Connector by reading the directory back:
//
//   - CheckDisabled: the entry exists, carries the lock of the
//     DisableStrategy, and the directory refuses a bind as the account
//     because it is locked (see verifyBindRefused), unless
//     Config.SkipVerifyBind.
//   - CheckRevoked: the group does not list the account's DN, asked with
//     one LDAP Compare, so a group's member list is never read.
//   - CheckDeleted: the entry is gone and no group under GroupsDN still
//     lists its DN.
//
// It changes nothing in the directory.
func (c *Client) Verify(ctx context.Context, req connectors.VerifyRequest) (connectors.Verification, error) {
	const op = "Verify"
	if err := connectors.CheckVerifyRequest(appName, req); err != nil {
		return connectors.Verification{}, err
	}
	dn, err := c.userDN(op, req.Username)
	if err != nil {
		return connectors.Verification{}, err
	}
	switch req.Check {
	case connectors.CheckDisabled:
		return c.verifyDisabled(ctx, op, req.Username, dn)
	case connectors.CheckRevoked:
		if err := validateGroup(op, req.Entitlement); err != nil {
			return connectors.Verification{}, err
		}
		return c.verifyRevoked(ctx, op, req.Username, dn, req.Entitlement)
	default:
		return c.verifyDeleted(ctx, op, req.Username, dn)
	}
}

func verified(format string, args ...any) connectors.Verification {
	return connectors.Verification{Verified: true, Detail: fmt.Sprintf(format, args...)}
}

func notVerified(format string, args ...any) connectors.Verification {
	return connectors.Verification{Detail: fmt.Sprintf(format, args...)}
}

func (c *Client) verifyDisabled(ctx context.Context, op, username, dn string) (connectors.Verification, error) {
	var e *goldap.Entry
	err := c.run(ctx, op, func(conn *goldap.Conn) error {
		var err error
		e, err = c.lookup(conn, op, username, dn, []string{c.stateAttr()})
		return err
	})
	switch {
	case err != nil:
		return connectors.Verification{}, err
	case e == nil:
		// A disable that finds the account gone is not a disable: the
		// caller decides what a vanished account means.
		return notVerified("account %q does not exist", username), nil
	case !c.isDisabled(e):
		return notVerified("account %q is not disabled: %s", username, c.lockState(e)), nil
	case c.cfg.SkipVerifyBind:
		return verified("account %q is disabled (%s); no bind was tried (SkipVerifyBind)", username, c.lockState(e)), nil
	}
	return c.verifyBindRefused(ctx, op, username, dn, c.lockState(e))
}

// lockState describes the lock attribute of entry e for a Detail.
func (c *Client) lockState(e *goldap.Entry) string {
	if c.cfg.DisableStrategy == StrategyAD {
		v := e.GetAttributeValue(attrUAC)
		switch uac, ok := parseUAC(v); {
		case v == "":
			return "userAccountControl is absent"
		case !ok:
			return fmt.Sprintf("userAccountControl %q is not a number", truncate(v))
		case uac&uacDisabled != 0:
			return fmt.Sprintf("userAccountControl %s has ACCOUNTDISABLE (0x2)", v)
		default:
			return fmt.Sprintf("userAccountControl %s lacks ACCOUNTDISABLE (0x2)", v)
		}
	}
	switch v := e.GetAttributeValue(attrLockedTime); v {
	case "":
		return "pwdAccountLockedTime is absent"
	case lockedForever:
		return "pwdAccountLockedTime is " + lockedForever
	default:
		// ppolicy's own lockout after failed binds, which expires.
		return fmt.Sprintf("pwdAccountLockedTime is %s, a lockout that may expire, not the permanent %s", truncate(v), lockedForever)
	}
}

// verifyBindRefused binds as dn and reports whether the directory refused
// the bind because the account is locked. Provisio's accounts usually have
// no password, so a refused bind alone proves nothing; only the server's
// reason does. The bind uses a random password (never an empty one, which
// would be an anonymous bind that succeeds) on a connection of its own,
// closed at once, so no pooled connection ever changes identity.
//
// OpenLDAP names a locked account in the Password Policy response control
// (accountLocked) only with ppolicy_use_lockout; it then answers before
// checking the password and records no pwdFailureTime, so the bind leaves
// the entry as it was. Active Directory names the reason in the diagnostic
// message of invalidCredentials (adBindReason).
func (c *Client) verifyBindRefused(ctx context.Context, op, username, dn, lock string) (connectors.Verification, error) {
	controls, err := c.probeBind(ctx, op, dn)
	if err == nil {
		return notVerified("account %q has the lock set (%s) but the directory accepted a bind as it with a random password: it does not enforce the lock, and takes any password for this account", username, lock), nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return connectors.Verification{}, err
	}
	var le *goldap.Error
	if !errors.As(err, &le) || isConnError(err) {
		return connectors.Verification{}, classifyf(op, err, "binding as %q to check its lock", username)
	}
	if le.ResultCode != goldap.LDAPResultInvalidCredentials {
		if kind, _ := kindOf(err); kind.Retryable() {
			return connectors.Verification{}, classifyf(op, err, "binding as %q to check its lock", username)
		}
		return notVerified("account %q has the lock set (%s) but the directory refused the bind as it with %q before saying whether the account is locked; set SkipVerifyBind if it never will",
			username, lock, goldap.LDAPResultCodeMap[le.ResultCode]), nil
	}
	if c.cfg.DisableStrategy == StrategyAD {
		return adVerdict(username, lock, diagnostic(le)), nil
	}
	pp, _ := goldap.FindControl(controls, goldap.ControlTypeBeheraPasswordPolicy).(*goldap.ControlBeheraPasswordPolicy)
	switch {
	case pp == nil:
		return notVerified("account %q has the lock set (%s) but the directory refused the bind without a password policy response, which may only mean it has no password: is the ppolicy overlay loaded, with ppolicy_use_lockout?", username, lock), nil
	case pp.Error != goldap.BeheraAccountLocked:
		return notVerified("account %q: lock attribute set (%s) but the directory does not refuse binds as locked: is the ppolicy overlay loaded with ppolicy_use_lockout, and does the account's password policy have pwdLockout TRUE?", username, lock), nil
	}
	return verified("account %q is disabled (%s) and the directory refuses binds as it: ppolicy answers accountLocked", username, lock), nil
}

// probeBind binds as dn with a random password on a fresh connection and
// returns the bind's response controls and its go-ldap error unclassified;
// failures to connect or an ended ctx come back as *connectors.Error.
func (c *Client) probeBind(ctx context.Context, op, dn string) ([]goldap.Control, error) {
	u, err := url.Parse(c.cfg.URL)
	if err != nil { // New validated it
		return nil, connectors.Errorf(connectors.KindInvalid, appName, op, nil, "config: URL does not parse")
	}
	cfg := c.cfg
	cfg.BindDN, cfg.BindPassword = "", ""
	conn, err := dialer{cfg: cfg, url: u}.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	timeout := c.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, classify(op, context.DeadlineExceeded)
	}
	conn.SetTimeout(timeout)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	req := goldap.NewSimpleBindRequest(dn, rand.Text(), []goldap.Control{goldap.NewControlBeheraPasswordPolicy()})
	res, err := conn.SimpleBind(req)
	if !stop() {
		return nil, classify(op, ctx.Err())
	}
	if res == nil {
		return nil, err
	}
	return res.Controls, err
}

// diagnostic returns the server's diagnostic message of le.
func diagnostic(le *goldap.Error) string {
	if le.Err == nil {
		return ""
	}
	return le.Err.Error()
}

// adCodes names the Win32 errors Active Directory reports in the
// diagnostic message of a failed bind.
var adCodes = map[string]string{
	"525": "no such user",
	"52e": "bad password",
	"530": "not permitted to log on at this time",
	"531": "not permitted to log on from this workstation",
	"532": "password expired",
	"533": "account disabled",
	"701": "account expired",
	"773": "password must be reset",
	"775": "account locked out",
}

// adDataCode matches the "data <hex>" of a diagnostic message such as
// "80090308: LdapErr: DSID-0C09042F, comment: AcceptSecurityContext error,
// data 533, v4563".
var adDataCode = regexp.MustCompile(`(?i)\bdata ([0-9a-f]+)\b`)

// adBindReason returns the lower-case Win32 error code in an Active
// Directory bind diagnostic message, or "" when there is none.
func adBindReason(diag string) string {
	m := adDataCode.FindStringSubmatch(diag)
	if m == nil {
		return ""
	}
	return strings.ToLower(m[1])
}

// adVerdict turns the diagnostic of Active Directory's invalidCredentials
// answer into a Verification: data 533 (disabled) or 775 (locked out)
// proves the directory refuses the account; anything else does not.
func adVerdict(username, lock, diag string) connectors.Verification {
	code := adBindReason(diag)
	switch code {
	case "533", "775":
		return verified("account %q is disabled (%s) and the directory refuses binds as it: data %s, %s", username, lock, code, adCodes[code])
	case "":
		return notVerified("account %q has the lock set (%s) but the directory refused the bind without saying why (no \"data <code>\" in its message): set SkipVerifyBind if it never says", username, lock)
	case "52e":
		return notVerified("account %q has the lock set (%s) but the directory refused the bind only as a bad password (data 52e), which does not show the account is disabled: Active Directory may name a disabled account only to a bind with the right password; set SkipVerifyBind to trust the attribute", username, lock)
	}
	what := adCodes[code]
	if what == "" {
		what = "an unknown reason"
	}
	return notVerified("account %q has the lock set (%s) but the directory refused the bind for another reason: data %s, %s", username, lock, code, what)
}

func (c *Client) verifyRevoked(ctx context.Context, op, username, dn, entitlement string) (connectors.Verification, error) {
	var v connectors.Verification
	err := c.run(ctx, op, func(conn *goldap.Conn) error {
		// lookup refuses a differently spelled account, as RevokeEntitlement
		// does; a missing one still has its DN checked, since a leftover
		// member value would grant the group to an account recreated under
		// the same name (RevokeEntitlement removes it).
		e, err := c.lookup(conn, op, username, dn, nil)
		if err != nil {
			return err
		}
		gone := ""
		if e == nil {
			gone = " (the account does not exist)"
		}
		gdn, err := c.findGroup(conn, op, entitlement)
		if connectors.IsNotFound(err) {
			v = verified("account %q does not hold %q%s: no groupOfNames with that cn under %s", username, entitlement, gone, c.cfg.GroupsDN)
			return nil
		}
		if err != nil {
			return err
		}
		listed, err := conn.Compare(gdn, attrMember, dn)
		switch {
		case hasCode(err, goldap.LDAPResultNoSuchObject):
			v = verified("account %q does not hold %q%s: its group %s is gone", username, entitlement, gone, gdn)
		case hasCode(err, goldap.LDAPResultNoSuchAttribute):
			v = verified("account %q does not hold %q%s: %s has no members", username, entitlement, gone, gdn)
		case err != nil:
			return classifyf(op, err, "comparing a member of %s", gdn)
		case listed && e == nil:
			v = notVerified("account %q does not exist but %s still lists its DN as a member: revoke again to remove the leftover value", username, gdn)
		case listed:
			v = notVerified("account %q still holds %q: %s lists %s as a member", username, entitlement, gdn, dn)
		default:
			v = verified("account %q does not hold %q%s: %s does not list its DN as a member", username, entitlement, gone, gdn)
		}
		return nil
	})
	return v, err
}

func (c *Client) verifyDeleted(ctx context.Context, op, username, dn string) (connectors.Verification, error) {
	var v connectors.Verification
	err := c.run(ctx, op, func(conn *goldap.Conn) error {
		e, err := c.lookup(conn, op, username, dn, nil)
		if err != nil {
			return err
		}
		if e != nil {
			v = notVerified("account %q still exists at %s", username, e.DN)
			return nil
		}
		// The search matches member values through the member index and
		// returns only each group's cn, never its member list.
		_, names, err := c.groupsWithMember(conn, op, dn, []string{attrCN})
		if err != nil {
			return err
		}
		if len(names) > 0 {
			v = notVerified("account %q does not exist but groups %s still list its DN: delete again to remove the leftover member values", username, strings.Join(names, ", "))
			return nil
		}
		v = verified("account %q does not exist and no group under %s lists its DN", username, c.cfg.GroupsDN)
		return nil
	})
	return v, err
}
