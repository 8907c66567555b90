package ldap

import (
	"slices"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/provisio-dev/provisio/connectors"
)

// groupBatch is how many groups the server sends per Simple Paged Results
// round trip while a page's entitlements are read; with their member lists
// they are the bulk of the memory a page needs.
const groupBatch = 100

// pageEntitlements sets the entitlements of a page of accounts with one
// search: the groups under GroupsDN listing any of the page's DNs as a
// member, (|(member=dn1)...(member=dnK)), read with their member values,
// which are matched to the accounts by normalised DN (dnKey), so member
// values spelled differently from the connector's DNs still count.
//
// The member values come back whole. The ValuesReturnFilter control (RFC
// 3876) could trim them to the page's DNs, but OpenLDAP evaluates it by
// testing every filter item against every value: with a page of 5,000 and a
// group of 100,000 members that is 5*10^8 comparisons per page (measured:
// 25 s against 1.4 s for sending every value). Reading a big group once per
// page costs O(members) instead of O(page x members).
//
// Active Directory returns at most 1,500 values of a large group, as
// member;range=0-1499; when that happens the page falls back to one group
// search per account, which the server answers exactly.
func (c *Client) pageEntitlements(conn *goldap.Conn, op string, accts []connectors.Account) error {
	if len(accts) == 0 {
		return nil
	}
	index := make(map[string]int, len(accts))
	var filter strings.Builder
	filter.WriteString("(&(objectClass=groupOfNames)(|")
	for i := range accts {
		dn := buildDN(attrUID, accts[i].Username, c.cfg.PeopleDN)
		index[dnKey(dn)] = i
		filter.WriteString(buildFilter(attrMember, dn))
	}
	filter.WriteString("))")
	names := make([][]string, len(accts))
	paging := goldap.NewControlPaging(groupBatch)
	req := goldap.NewSearchRequest(c.cfg.GroupsDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		filter.String(), []string{attrCN, attrMember}, []goldap.Control{paging})
	for {
		res, err := conn.Search(req)
		if err != nil {
			return classifyf(op, err, "listing the groups of %d accounts", len(accts))
		}
		for _, e := range res.Entries {
			if rangedMembers(e) {
				return c.entitlementsOneByOne(conn, op, accts)
			}
			name := groupName(e)
			for _, v := range e.GetAttributeValues(attrMember) {
				if i, ok := index[dnKey(v)]; ok {
					names[i] = append(names[i], name)
				}
			}
		}
		ctrl, ok := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
		if !ok || len(ctrl.Cookie) == 0 {
			break
		}
		paging.SetCookie(ctrl.Cookie)
	}
	for i := range accts {
		slices.Sort(names[i])
		accts[i].Entitlements = slices.Compact(names[i])
	}
	return nil
}

// entitlementsOneByOne sets each account's entitlements with its own group
// search.
func (c *Client) entitlementsOneByOne(conn *goldap.Conn, op string, accts []connectors.Account) error {
	for i := range accts {
		names, err := c.groupsOf(conn, op, buildDN(attrUID, accts[i].Username, c.cfg.PeopleDN))
		if err != nil {
			return err
		}
		accts[i].Entitlements = names
	}
	return nil
}

// rangedMembers reports whether the server sent only part of e's members
// (Active Directory's range retrieval).
func rangedMembers(e *goldap.Entry) bool {
	for _, a := range e.Attributes {
		if len(a.Name) > len(attrMember) && strings.EqualFold(a.Name[:len(attrMember)+1], attrMember+";") {
			return true
		}
	}
	return false
}

// groupName is the entitlement name of group entry e: the cn of its RDN,
// else its first cn.
func groupName(e *goldap.Entry) string {
	if attr, v, ok := firstRDN(e.DN); ok && strings.EqualFold(attr, attrCN) {
		return v
	}
	return e.GetAttributeValue(attrCN)
}

// dnKey returns a form of dn under which DNs the directory treats as equal
// are equal: attribute types and values case-folded (values as sortKey
// normalises them), escaping and spaces around separators undone, and the
// attributes of a multi-valued RDN sorted. Attribute types given as OIDs
// are not mapped to names. A DN of plain ASCII without escapes, quotes,
// spaces or multi-valued RDNs, as the connector writes them, takes a fast
// path: listing a page reads every member of every group it touches.
// An unparsable value gets a key no DN has.
func dnKey(dn string) string {
	plain := true
	for i := 0; i < len(dn) && plain; i++ {
		switch b := dn[i]; {
		case b >= 0x80, b < 0x20, b == '\\', b == '"', b == '+', b == ' ', b == ';', b == '#', b == '<', b == '>':
			plain = false
		}
	}
	if plain {
		return asciiLower(dn)
	}
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return "\x00" + dn
	}
	var b strings.Builder
	for i, rdn := range parsed.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		avas := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			avas[j] = asciiLower(a.Type) + "=" + escapeKeyValue(sortKey(a.Value))
		}
		slices.Sort(avas)
		b.WriteString(strings.Join(avas, "+"))
	}
	return b.String()
}

// escapeKeyValue escapes the characters that separate RDNs and attributes
// in a dnKey, so two different DNs cannot produce the same key; a value of
// a plain DN has none of them, so both paths of dnKey agree.
func escapeKeyValue(v string) string {
	if !strings.ContainsAny(v, `\,+`) {
		return v
	}
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `+`, `\+`).Replace(v)
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.Map(func(r rune) rune {
				if 'A' <= r && r <= 'Z' {
					return r + 'a' - 'A'
				}
				return r
			}, s)
		}
	}
	return s
}
