package ldap

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/provisio-dev/provisio/connectors"
)

// scanBatch is how many entries the server sends per Simple Paged Results
// round trip while the scanning fallback reads PeopleDN.
const scanBatch = 500

// listFilter selects the entries a listing reads. (uid=*) leaves out
// entries without a uid, which name no account and which a server-side sort
// would put last with no value to continue from.
const listFilter = "(&(objectClass=inetOrgPerson)(uid=*))"

// Back-off before trying server-side sorting again after the directory
// would not sort: briefly when it was busy (all sort slots taken), longer
// when it does not sort at all.
const (
	sortBusyBackoff        = 5 * time.Second
	sortUnsupportedBackoff = time.Minute
)

// tokenPrefix versions the page token format: "u2:<cursor ID>:<sort value
// of the last account listed>", base64url-encoded. The cursor ID is empty
// when no cursor was kept.
const tokenPrefix = "u2:"

// maxTokenValue bounds the sort value a token may carry: a uid value, which
// the standard schema bounds to 256 characters.
const maxTokenValue = 256 * utf8.UTFMax

// pageToken is a decoded page token: the listing continues after the
// account whose sort value is after, on cursor if it is still open.
type pageToken struct {
	cursor, after string
}

func encodeToken(cursorID, after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + cursorID + ":" + after))
}

// decodeToken returns the position a token continues from; the zero
// pageToken for the first page.
func decodeToken(token string) (pageToken, error) {
	if token == "" {
		return pageToken{}, nil
	}
	malformed := connectors.Errorf(connectors.KindInvalid, appName, "ListAccounts", nil, "malformed page token")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || !strings.HasPrefix(string(raw), tokenPrefix) || !utf8.Valid(raw) {
		return pageToken{}, malformed
	}
	id, after, ok := strings.Cut(string(raw[len(tokenPrefix):]), ":")
	if !ok || after == "" || len(after) > maxTokenValue || strings.ContainsFunc(id, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f')
	}) {
		return pageToken{}, malformed
	}
	return pageToken{cursor: id, after: after}, nil
}

// listed is an account of a page and where it sorts.
type listed struct {
	acct connectors.Account
	pos  position
}

// ListAccounts implements connectors.Connector. Accounts come in the order
// of sortKey (caseIgnoreOrderingMatch on uid) and the token carries the
// last account's uid value, so any token continues correctly on any client;
// see the package documentation for how a page is read (a sorted snapshot
// on the server when the directory can sort, a scan otherwise) and why.
// The page's entitlements come from one group search.
func (c *Client) ListAccounts(ctx context.Context, req connectors.ListAccountsRequest) (connectors.ListAccountsResponse, error) {
	const op = "ListAccounts"
	tok, err := decodeToken(req.PageToken)
	if err != nil {
		return connectors.ListAccountsResponse{}, err
	}
	if c.pool.isClosed() {
		return connectors.ListAccountsResponse{}, connectors.Errorf(connectors.KindUnavailable, appName, op, nil, "client is closed")
	}
	size := req.PageSizeOrDefault()
	page, next, err := c.sortedPage(ctx, op, tok, size)
	if errors.Is(err, errNoServerSort) {
		page, next, err = c.scannedPage(ctx, op, tok.after, size)
	}
	if err != nil {
		return connectors.ListAccountsResponse{}, err
	}
	accounts := make([]connectors.Account, len(page))
	for i := range page {
		accounts[i] = page[i].acct
	}
	err = c.run(ctx, op, func(conn *goldap.Conn) error {
		for i := range accounts {
			accounts[i].Entitlements = nil
		}
		return c.pageEntitlements(conn, op, accounts)
	})
	if err != nil {
		return connectors.ListAccountsResponse{}, err
	}
	return connectors.ListAccountsResponse{Accounts: accounts, NextPageToken: next}, nil
}

// sortedPage reads a page through a cursor: the token's own when this client
// still keeps it, else a new one positioned by value. A dead kept cursor
// (server restart, dropped connection) is replaced once. errNoServerSort
// means the caller must scan.
func (c *Client) sortedPage(ctx context.Context, op string, tok pageToken, size int) ([]listed, string, error) {
	if time.Now().UnixNano() < c.sortRetryAt.Load() {
		return nil, "", errNoServerSort
	}
	cur := c.cursors.take(tok.cursor)
	for attempt := 0; ; attempt++ {
		reused := cur != nil
		if cur == nil {
			conn, err := c.dial(ctx)
			if err != nil {
				return nil, "", classify(op, err)
			}
			cur = &cursor{id: newCursorID(), conn: conn}
		}
		var (
			page []listed
			last string
			more bool
		)
		err := c.onConn(ctx, cur.conn, func() error {
			var err error
			page, last, more, err = c.readSorted(cur, op, tok.after, size)
			return err
		})
		switch {
		case err == nil && more:
			c.cursors.put(cur, time.Now())
			return page, encodeToken(cur.id, last), nil
		case err == nil:
			cur.close() // the listing is over: free the snapshot now
			return page, "", nil
		}
		cur.close()
		if errors.Is(err, errNoServerSort) {
			backoff := sortUnsupportedBackoff
			if hasCode(err, goldap.LDAPResultBusy) {
				backoff = sortBusyBackoff
			}
			c.sortRetryAt.Store(time.Now().Add(backoff).UnixNano())
			return nil, "", err
		}
		if reused && attempt == 0 && ctx.Err() == nil && isConnError(err) && !isTimeout(err) {
			cur = nil
			continue
		}
		return nil, "", classify(op, err)
	}
}

// onConn runs fn on conn bounded by RequestTimeout and ctx, whose end closes
// conn (go-ldap requests take no context).
func (c *Client) onConn(ctx context.Context, conn *goldap.Conn, fn func() error) error {
	timeout := c.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	conn.SetTimeout(timeout)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	err := fn()
	if !stop() && err != nil {
		return ctx.Err()
	}
	return err
}

// readSorted reads up to size accounts sorting after the value after ("" =
// from the start) through cur's snapshot, creating the snapshot on the first
// request. It returns them, the sort value of the last entry consumed, and
// whether entries remain. A window that starts at a value may begin with the
// entry the previous page ended on, which is skipped; entries that are not
// accounts are skipped too, and more windows are read until the page is
// full, so only the last page is short.
func (c *Client) readSorted(cur *cursor, op, after string, size int) (rows []listed, last string, more bool, err error) {
	last = after
	next := 0 // offset of the next window once positioned within this call
	for len(rows) < size {
		n := size - len(rows)
		target, skipFirst := vlvTarget{offset: 1}, false
		switch {
		case next > 0:
			target.offset = next
		case last != "":
			target, skipFirst = vlvTarget{value: last}, true
			n++
		}
		req := goldap.NewSearchRequest(c.cfg.PeopleDN, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
			listFilter, c.listAttrs(), []goldap.Control{sortRequest(), vlvRequest(target, n-1, cur.context)})
		res, err := cur.conn.Search(req)
		if err != nil {
			if sortUnavailable(err) {
				return nil, "", false, errors.Join(errNoServerSort, err)
			}
			return nil, "", false, classifyf(op, err, "listing accounts under %s", c.cfg.PeopleDN)
		}
		vr, err := sortedResponse(res.Controls)
		if err != nil {
			return nil, "", false, err
		}
		if vr.context != nil {
			cur.context = vr.context
		}
		if vr.count == 0 || vr.target < 1 || vr.target > vr.count {
			return rows, last, false, nil // nothing at or after the target
		}
		from := sortKey(last)
		for i, e := range res.Entries {
			if len(rows) == size {
				return rows, last, true, nil
			}
			pos, ok := entryPosition(e)
			if !ok {
				continue
			}
			if skipFirst && i == 0 && (pos.value == last || pos.key == from) {
				continue // the account the previous page ended on
			}
			last = pos.value
			if acct, ok := c.listedAccount(e); ok {
				rows = append(rows, listed{acct: acct, pos: pos})
			}
		}
		end := vr.target + n - 1 // offset of the last entry asked for
		if end >= vr.count {
			return rows, last, false, nil
		}
		next = end + 1
	}
	return rows, last, true, nil
}

// listAttrs are the attributes a listing reads: what accountFrom uses, and
// uid to position entries.
func (c *Client) listAttrs() []string {
	return []string{attrUID, attrSN, attrGivenName, attrDisplayName, attrMail, attrEmployeeNumber, c.stateAttr()}
}

// listedAccount returns the account e is, when e is named uid=<username>
// with a username the connector can address.
func (c *Client) listedAccount(e *goldap.Entry) (connectors.Account, bool) {
	attr, username, ok := firstRDN(e.DN)
	if !ok || !strings.EqualFold(attr, attrUID) || validateName(username) != nil {
		return connectors.Account{}, false
	}
	return c.accountFrom(e, username), true
}

// scannedPage is the fallback when the directory will not sort: a scan of
// PeopleDN keeping the size smallest accounts after after, in sortKey order.
func (c *Client) scannedPage(ctx context.Context, op, after string, size int) ([]listed, string, error) {
	var page []listed
	err := c.run(ctx, op, func(conn *goldap.Conn) error {
		var err error
		page, err = c.scan(conn, op, after, size+1)
		return err
	})
	if err != nil || len(page) <= size {
		return page, "", err
	}
	page = page[:size]
	return page, encodeToken("", page[size-1].pos.value), nil
}

// scan returns, in sortKey order, the limit first accounts sorting after
// after ("" = from the start). It reads every entry below PeopleDN with the
// Simple Paged Results control; memory stays O(limit) whatever the
// directory's size, time is O(accounts) per call.
func (c *Client) scan(conn *goldap.Conn, op, after string, limit int) ([]listed, error) {
	paging := goldap.NewControlPaging(scanBatch)
	req := goldap.NewSearchRequest(c.cfg.PeopleDN, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
		listFilter, c.listAttrs(), []goldap.Control{paging})
	from := positionOf(after)
	byPos := func(a, b listed) int { return a.pos.compare(b.pos) }
	var kept []listed
	for {
		res, err := conn.Search(req)
		if err != nil {
			return nil, classifyf(op, err, "listing accounts under %s", c.cfg.PeopleDN)
		}
		for _, e := range res.Entries {
			pos, ok := entryPosition(e)
			if !ok || (after != "" && pos.compare(from) <= 0) {
				continue // already listed
			}
			acct, ok := c.listedAccount(e)
			if !ok {
				continue
			}
			kept = append(kept, listed{acct: acct, pos: pos})
			if len(kept) >= 2*limit {
				slices.SortFunc(kept, byPos)
				kept = kept[:limit]
			}
		}
		ctrl, ok := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
		if !ok || len(ctrl.Cookie) == 0 {
			break
		}
		paging.SetCookie(ctrl.Cookie)
	}
	slices.SortFunc(kept, byPos)
	if len(kept) > limit {
		kept = kept[:limit]
	}
	return kept, nil
}

// sortBy sorts s stably by key.
func sortBy[T any](s []T, key func(T) string) {
	slices.SortStableFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
}

func parseUAC(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

func formatUAC(v int64) string { return strconv.FormatInt(v, 10) }
