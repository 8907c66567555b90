package verify

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/policy"
)

// Account is what one person should hold in one application.
type Account struct {
	// Disabled is true for an account that must exist but block logins
	// (a leaver's account during retention).
	Disabled bool `json:"disabled,omitempty"`
	// Entitlements are the groups or roles the account must hold, no more
	// and no fewer.
	Entitlements []string `json:"entitlements,omitempty"`
}

// Person is what one person should hold: one account in each application
// of Accounts and none anywhere else.
type Person struct {
	EmployeeID string `json:"employeeId"`
	// Username is the login every account must carry; empty skips the
	// check.
	Username string             `json:"username,omitempty"`
	Accounts map[string]Account `json:"accounts,omitempty"`
}

// Birthright returns the accounts a plan gives without anyone's approval:
// every item that needs no approval and is not temporary-only, grouped by
// application. The gated items are returned apart, because what they give
// depends on an approver or a request, not on policy alone.
func Birthright(plan policy.Plan) (accounts map[string]Account, gated []policy.Item) {
	accounts = map[string]Account{}
	for _, it := range plan.Items {
		if len(it.Approvals) > 0 || it.Temporary {
			gated = append(gated, it)
			continue
		}
		a := accounts[it.Application]
		a.Entitlements = append(a.Entitlements, it.Entitlement)
		accounts[it.Application] = a
	}
	for app, a := range accounts {
		slices.Sort(a.Entitlements)
		accounts[app] = a
	}
	return accounts, gated
}

// Snapshot is every account of every application, keyed by application
// name, as the connectors list them.
type Snapshot map[string][]connectors.Account

// listPageSize keeps the number of listing round trips low without
// holding an unbounded page.
const listPageSize = 1000

// Collect lists every account of every connector, keyed by the name the
// map gives it. A failed listing fails the whole snapshot: a comparison
// against half an application would report phantom differences.
func Collect(ctx context.Context, conns map[string]connectors.Connector) (Snapshot, error) {
	s := Snapshot{}
	for _, name := range slices.Sorted(maps.Keys(conns)) {
		accounts := []connectors.Account{}
		token := ""
		for {
			resp, err := conns[name].ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: listPageSize, PageToken: token})
			if err != nil {
				return nil, fmt.Errorf("list the accounts of %s: %w", name, err)
			}
			accounts = append(accounts, resp.Accounts...)
			if resp.NextPageToken == "" {
				break
			}
			token = resp.NextPageToken
		}
		s[name] = accounts
	}
	return s, nil
}

// ByEmployee indexes the snapshot by employee ID, then application. Accounts
// without an employee ID (service accounts, ones made by hand) are under
// the empty ID.
func (s Snapshot) ByEmployee() map[string]map[string][]connectors.Account {
	out := map[string]map[string][]connectors.Account{}
	for app, accounts := range s {
		for _, a := range accounts {
			if out[a.EmployeeID] == nil {
				out[a.EmployeeID] = map[string][]connectors.Account{}
			}
			out[a.EmployeeID][app] = append(out[a.EmployeeID][app], a)
		}
	}
	return out
}

// Kind names one sort of difference.
type Kind string

// The kinds of difference Compare and Ledger report.
const (
	// KindMissing: the person should have an account and has none.
	KindMissing Kind = "missing account"
	// KindExtra: an account nobody should have (a person who should hold
	// nothing there, or, in strict mode, someone not checked at all).
	KindExtra Kind = "extra account"
	// KindDuplicate: more than one account of the same person in one
	// application.
	KindDuplicate Kind = "duplicate account"
	// KindMissingEntitlement: an entitlement the account should hold.
	KindMissingEntitlement Kind = "missing entitlement"
	// KindExtraEntitlement: an entitlement the account should not hold.
	KindExtraEntitlement Kind = "extra entitlement"
	// KindState: enabled where it should be disabled, or the other way.
	KindState Kind = "wrong state"
	// KindUsername: the person's account under another login.
	KindUsername Kind = "wrong username"
	// KindLedger: the access ledger and the application disagree.
	KindLedger Kind = "ledger disagrees"
)

// Difference is one thing that is not as it should be.
type Difference struct {
	Kind        Kind   `json:"kind"`
	Application string `json:"application"`
	EmployeeID  string `json:"employeeId,omitempty"`
	Username    string `json:"username,omitempty"`
	Entitlement string `json:"entitlement,omitempty"`
	// Detail says what was expected and what was found.
	Detail string `json:"detail,omitempty"`
}

// String renders the difference on one line.
func (d Difference) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", d.Application, d.Kind)
	if d.Username != "" {
		fmt.Fprintf(&b, " %s", d.Username)
	}
	if d.EmployeeID != "" {
		fmt.Fprintf(&b, " (%s)", d.EmployeeID)
	}
	if d.Entitlement != "" {
		fmt.Fprintf(&b, " entitlement %s", d.Entitlement)
	}
	if d.Detail != "" {
		fmt.Fprintf(&b, ": %s", d.Detail)
	}
	return b.String()
}

// Options tune Compare.
type Options struct {
	// Strict makes every account that belongs to nobody in want an extra
	// one: for applications that hold only the people checked (a private
	// test instance). Otherwise such accounts are ignored, except one that
	// carries a checked person's username.
	Strict bool
}

// Compare reports every difference between what want says the people hold
// and what got holds, sorted by application, employee ID and username.
func Compare(want []Person, got Snapshot, opts Options) []Difference {
	idx := got.ByEmployee()
	wanted := map[string]bool{}
	usernames := map[string]string{}
	var diffs []Difference
	for _, p := range want {
		wanted[p.EmployeeID] = true
		if p.Username != "" {
			usernames[p.Username] = p.EmployeeID
		}
		held := idx[p.EmployeeID]
		apps := slices.Sorted(maps.Keys(p.Accounts))
		for app := range held {
			if _, ok := p.Accounts[app]; !ok {
				apps = append(apps, app)
			}
		}
		for _, app := range apps {
			diffs = append(diffs, comparePerson(p, app, held[app])...)
		}
	}
	for app, accounts := range got {
		for _, a := range accounts {
			if wanted[a.EmployeeID] {
				continue
			}
			owner, taken := usernames[a.Username]
			switch {
			case opts.Strict && a.EmployeeID == "":
				diffs = append(diffs, Difference{Kind: KindExtra, Application: app, Username: a.Username,
					Detail: "an account with no employee ID in an application that should hold only the people checked"})
			case opts.Strict:
				diffs = append(diffs, Difference{Kind: KindExtra, Application: app, EmployeeID: a.EmployeeID, Username: a.Username,
					Detail: "belongs to nobody checked"})
			case taken:
				diffs = append(diffs, Difference{Kind: KindExtra, Application: app, EmployeeID: a.EmployeeID, Username: a.Username,
					Detail: "carries the username of " + owner})
			}
		}
	}
	sortDifferences(diffs)
	return diffs
}

// comparePerson compares one person's accounts in one application with
// what they should hold there.
func comparePerson(p Person, app string, held []connectors.Account) []Difference {
	w, should := p.Accounts[app]
	diff := func(kind Kind, username, entitlement, detail string) Difference {
		return Difference{Kind: kind, Application: app, EmployeeID: p.EmployeeID, Username: username, Entitlement: entitlement, Detail: detail}
	}
	switch {
	case !should:
		out := make([]Difference, 0, len(held))
		for _, a := range held {
			out = append(out, diff(KindExtra, a.Username, "", "the person should hold no account here"))
		}
		return out
	case len(held) == 0:
		return []Difference{diff(KindMissing, p.Username, "", fmt.Sprintf("want %s", describe(w.Disabled, w.Entitlements)))}
	}
	var out []Difference
	a := held[0]
	if len(held) > 1 {
		names := make([]string, len(held))
		for i, h := range held {
			names[i] = h.Username
		}
		slices.Sort(names)
		out = append(out, diff(KindDuplicate, p.Username, "", fmt.Sprintf("%d accounts: %s", len(held), strings.Join(names, ", "))))
		// Compare the one under the right name, if any.
		if i := slices.IndexFunc(held, func(h connectors.Account) bool { return h.Username == p.Username }); i >= 0 {
			a = held[i]
		}
	}
	if p.Username != "" && a.Username != p.Username {
		out = append(out, diff(KindUsername, a.Username, "", "want "+p.Username))
	}
	if a.Disabled != w.Disabled {
		out = append(out, diff(KindState, a.Username, "", fmt.Sprintf("want %s, got %s", state(w.Disabled), state(a.Disabled))))
	}
	missing, extra := setDiff(w.Entitlements, a.Entitlements)
	for _, e := range missing {
		out = append(out, diff(KindMissingEntitlement, a.Username, e, ""))
	}
	for _, e := range extra {
		out = append(out, diff(KindExtraEntitlement, a.Username, e, ""))
	}
	return out
}

// Ledger compares what the access ledger says one person holds (Holdings)
// with the accounts the person holds in the applications (accounts keyed
// by application, as Snapshot.ByEmployee gives them).
func Ledger(employeeID string, holdings []ledger.Holding, accounts map[string][]connectors.Account) []Difference {
	type view struct {
		found    bool
		disabled bool
		ents     []string
	}
	type key struct{ app, account string }
	led := map[key]*view{}
	for _, h := range holdings {
		k := key{h.Application, h.Account}
		v := led[k]
		if v == nil {
			v = &view{}
			led[k] = v
		}
		if h.Entitlement == "" {
			v.found = true
			v.disabled = h.State == ledger.StateDisabled
			continue
		}
		v.ents = append(v.ents, h.Entitlement)
	}
	app := map[key]connectors.Account{}
	for name, held := range accounts {
		for _, a := range held {
			app[key{name, a.Username}] = a
		}
	}
	var diffs []Difference
	diff := func(k key, entitlement, detail string) {
		diffs = append(diffs, Difference{Kind: KindLedger, Application: k.app, EmployeeID: employeeID,
			Username: k.account, Entitlement: entitlement, Detail: detail})
	}
	for k, v := range led {
		a, ok := app[k]
		switch {
		case !ok && v.found:
			diff(k, "", fmt.Sprintf("the ledger shows the account %s; the application has none", state(v.disabled)))
			continue
		case !ok:
			diff(k, "", fmt.Sprintf("the ledger shows entitlements %v of an account it never recorded; the application has none", v.ents))
			continue
		case !v.found:
			diff(k, "", "the ledger shows entitlements but no account")
		case v.disabled != a.Disabled:
			diff(k, "", fmt.Sprintf("the ledger says %s, the application %s", state(v.disabled), state(a.Disabled)))
		}
		inLedger, inApp := setDiff(v.ents, a.Entitlements)
		for _, e := range inLedger {
			diff(k, e, "granted in the ledger, not held in the application")
		}
		for _, e := range inApp {
			diff(k, e, "held in the application, not granted in the ledger")
		}
	}
	for k, a := range app {
		if _, ok := led[k]; !ok {
			diff(k, "", fmt.Sprintf("the application holds the account (%s) the ledger does not show", describe(a.Disabled, a.Entitlements)))
		}
	}
	sortDifferences(diffs)
	return diffs
}

// Summary counts one application's expected and listed accounts and its
// differences by kind.
type Summary struct {
	Application string `json:"application"`
	// Expected is how many accounts the people checked should hold; Held
	// how many the application listed (everyone's, in strict mode the
	// same people's).
	Expected int          `json:"expected"`
	Held     int          `json:"held"`
	ByKind   map[Kind]int `json:"byKind,omitempty"`
}

// Total is the number of differences of the application.
func (s Summary) Total() int {
	n := 0
	for _, c := range s.ByKind {
		n += c
	}
	return n
}

// Summarize counts, per application, the accounts expected and held and
// the differences by kind, sorted by application.
func Summarize(want []Person, got Snapshot, diffs []Difference) []Summary {
	by := map[string]*Summary{}
	get := func(app string) *Summary {
		if by[app] == nil {
			by[app] = &Summary{Application: app, ByKind: map[Kind]int{}}
		}
		return by[app]
	}
	for app, accounts := range got {
		get(app).Held = len(accounts)
	}
	for _, p := range want {
		for app := range p.Accounts {
			get(app).Expected++
		}
	}
	for _, d := range diffs {
		get(d.Application).ByKind[d.Kind]++
	}
	out := make([]Summary, 0, len(by))
	for _, app := range slices.Sorted(maps.Keys(by)) {
		out = append(out, *by[app])
	}
	return out
}

// setDiff returns what want has and got lacks, and what got has and want
// lacks, each sorted and without repeats.
func setDiff(want, got []string) (missing, extra []string) {
	w := map[string]bool{}
	for _, e := range want {
		w[e] = true
	}
	g := map[string]bool{}
	for _, e := range got {
		g[e] = true
		if !w[e] {
			extra = append(extra, e)
		}
	}
	for e := range w {
		if !g[e] {
			missing = append(missing, e)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, slices.Compact(extra)
}

func state(disabled bool) string {
	if disabled {
		return "disabled"
	}
	return "enabled"
}

func describe(disabled bool, ents []string) string {
	if len(ents) == 0 {
		return state(disabled) + ", no entitlements"
	}
	return fmt.Sprintf("%s with %s", state(disabled), strings.Join(ents, ", "))
}

func sortDifferences(diffs []Difference) {
	slices.SortFunc(diffs, func(a, b Difference) int {
		return cmp.Or(
			cmp.Compare(a.Application, b.Application),
			cmp.Compare(a.EmployeeID, b.EmployeeID),
			cmp.Compare(a.Username, b.Username),
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Entitlement, b.Entitlement),
		)
	})
}
