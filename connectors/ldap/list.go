package ldap

import (
	"cmp"
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/provisio-dev/provisio/connectors"
)

// scanBatch is how many entries the server sends per Simple Paged Results
// round trip while ListAccounts scans PeopleDN.
const scanBatch = 500

// tokenPrefix versions the page token format.
const tokenPrefix = "u1:"

// encodeToken returns the opaque token that continues after username.
func encodeToken(username string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + username))
}

// decodeToken returns the username a token continues after; "" for the
// first page.
func decodeToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || !strings.HasPrefix(string(raw), tokenPrefix) || !utf8.Valid(raw) || len(raw) == len(tokenPrefix) {
		return "", connectors.Errorf(connectors.KindInvalid, appName, "ListAccounts", nil, "malformed page token")
	}
	return string(raw[len(tokenPrefix):]), nil
}

// ListAccounts implements connectors.Connector with keyset pagination by
// username; see the package documentation for why the Simple Paged Results
// cookie is not the page token. Each call scans the accounts one level
// below PeopleDN with the paged-results control on one connection, keeping
// only the PageSize+1 smallest usernames after the token's.
func (c *Client) ListAccounts(ctx context.Context, req connectors.ListAccountsRequest) (connectors.ListAccountsResponse, error) {
	const op = "ListAccounts"
	after, err := decodeToken(req.PageToken)
	if err != nil {
		return connectors.ListAccountsResponse{}, err
	}
	size := req.PageSizeOrDefault()
	var resp connectors.ListAccountsResponse
	err = c.run(ctx, op, func(conn *goldap.Conn) error {
		resp = connectors.ListAccountsResponse{}
		page, err := c.scan(conn, op, after, size+1)
		if err != nil {
			return err
		}
		if len(page) > size {
			page = page[:size]
			resp.NextPageToken = encodeToken(page[size-1].Username)
		}
		for i := range page {
			dn := buildDN(attrUID, page[i].Username, c.cfg.PeopleDN)
			if page[i].Entitlements, err = c.groupsOf(conn, op, dn); err != nil {
				return err
			}
		}
		resp.Accounts = page
		return nil
	})
	return resp, err
}

// scan returns, sorted, the limit smallest accounts whose username sorts
// after after. Memory stays O(limit) whatever the directory's size.
func (c *Client) scan(conn *goldap.Conn, op, after string, limit int) ([]connectors.Account, error) {
	paging := goldap.NewControlPaging(scanBatch)
	req := goldap.NewSearchRequest(c.cfg.PeopleDN, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=inetOrgPerson)", c.personAttrs(), []goldap.Control{paging})
	byName := func(a, b connectors.Account) int { return cmp.Compare(a.Username, b.Username) }
	var kept []connectors.Account
	for {
		res, err := conn.Search(req)
		if err != nil {
			return nil, classifyf(op, err, "listing accounts under %s", c.cfg.PeopleDN)
		}
		for _, e := range res.Entries {
			attr, username, ok := firstRDN(e.DN)
			if !ok || !strings.EqualFold(attr, attrUID) || validateName(username) != nil || username <= after {
				continue // not addressable by username, or already listed
			}
			kept = append(kept, c.accountFrom(e, username))
			if len(kept) >= 2*limit {
				slices.SortFunc(kept, byName)
				kept = kept[:limit]
			}
		}
		ctrl, ok := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
		if !ok || len(ctrl.Cookie) == 0 {
			break
		}
		paging.SetCookie(ctrl.Cookie)
	}
	slices.SortFunc(kept, byName)
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
