package policy

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"gopkg.in/yaml.v3"

	"github.com/provisio-dev/provisio/internal/hr"
)

// Problem is one thing wrong with a policy file: where, what, and how to fix
// it.
type Problem struct {
	// Line and Column are 1-based; 0 when the problem concerns the whole
	// file.
	Line    int    `json:"line"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Format writes the problem as "file:line: what is wrong; how to fix".
func (p Problem) Format(file string) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	b.WriteString(": " + p.Message)
	if p.Fix != "" {
		b.WriteString("; " + p.Fix)
	}
	return b.String()
}

// Error is a policy file that cannot be used, with every problem found in
// it, in file order.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Format(e.File)
	}
	return strings.Join(lines, "\n")
}

// maxProblems bounds the report on a badly broken file; the first ones are
// the ones to fix first anyway.
const maxProblems = 200

// Load reads and parses the policy file at path.
func Load(path string) (*Policy, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a policy file. name is used in error messages
// and as Policy.Source. A file with any problem is refused whole: the error
// is an *Error listing every problem with its line.
func Parse(name string, data []byte) (p *Policy, err error) {
	// yaml.v3 signals errors by panicking internally and recovers them
	// itself; this is a last line of defence so a malformed file can never
	// take the worker down.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, &Error{File: name, Problems: []Problem{{Message: fmt.Sprintf("cannot read the file: %v", r)}}}
		}
	}()
	l := &loader{file: name}
	p = l.parse(data)
	if p == nil && len(l.probs) == 0 {
		l.badAt(0, 0, "start from deployments/demo/policy.yaml", "file holds no policy")
	}
	if len(l.probs) > 0 {
		slices.SortStableFunc(l.probs, func(a, b Problem) int { return a.Line - b.Line })
		return nil, &Error{File: name, Problems: l.probs}
	}
	sum := sha256.Sum256(data)
	p.Version = hex.EncodeToString(sum[:])
	p.Source = name
	return p, nil
}

// Problems returns the problems of err if it is an *Error, else nil.
func Problems(err error) []Problem {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Problems
	}
	return nil
}

var (
	appNameRe  = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	nameRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	settingRe  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	envNameRe  = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)
	yamlLineRe = regexp.MustCompile(`line (\d+)`)
	secretRe   = regexp.MustCompile(`(?i)pass(word|wd|phrase)?|secret|token|api_?key|private_?key|credential`)
)

// connectorTypes are the connectors this project ships.
func knownConnector(name string) bool {
	switch name {
	case "ldap", "postgres", "scim":
		return true
	}
	return false
}

var risks = []string{string(RiskLow), string(RiskMedium), string(RiskHigh), string(RiskCritical)}

type loader struct {
	file  string
	lines []string // the source, to place errors inside multi-line conditions
	probs []Problem
	env   *cel.Env
}

func (l *loader) bad(n *yaml.Node, fix, format string, args ...any) {
	if len(l.probs) >= maxProblems {
		return
	}
	p := Problem{Message: fmt.Sprintf(format, args...), Fix: fix}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	l.probs = append(l.probs, p)
}

func (l *loader) badAt(line, col int, fix, format string, args ...any) {
	if len(l.probs) >= maxProblems {
		return
	}
	l.probs = append(l.probs, Problem{Line: line, Column: col, Message: fmt.Sprintf(format, args...), Fix: fix})
}

// defaults are the file's defaults section merged over the built-ins.
type defaults struct {
	approval  Approval
	temporary Temporary
	retention time.Duration
	fallback  string
}

// at is a string value with the node it came from, kept until references
// are resolved so their errors point at the right line.
type at struct {
	v string
	n *yaml.Node
}

// pending holds what needs resolving once every application and role is
// known.
type pending struct {
	roleIncludes map[*Role][]at
	roleEnts     map[*Role][]at
	ruleRoles    map[*Rule][]at
	ruleEnts     map[*Rule][]at
	sodEnts      map[*SoDRule][]at
	ruleWhen     map[*Rule]*yaml.Node
	fallback     *yaml.Node
	needApprover *yaml.Node
}

func (l *loader) parse(data []byte) *Policy {
	if len(data) > MaxPolicyBytes {
		l.badAt(0, 0, "split it or remove unused entries", "file is larger than %d bytes", MaxPolicyBytes)
		return nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		l.badAt(1, 0, "start from deployments/demo/policy.yaml", "file is empty")
		return nil
	}
	l.lines = strings.Split(string(data), "\n")
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		l.badAt(1, 0, "start from deployments/demo/policy.yaml", "file holds no policy")
		return nil
	} else if err != nil {
		l.yamlError(err)
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		l.yamlError(err)
		return nil
	default:
		l.bad(&extra, "keep the whole policy in one YAML document (remove the ---)", "the file holds more than one YAML document")
		return nil
	}
	if len(doc.Content) == 0 {
		l.badAt(1, 0, "start from deployments/demo/policy.yaml", "file holds no policy")
		return nil
	}
	if l.rejectAliases(doc.Content[0]) {
		return nil
	}
	return l.policy(doc.Content[0])
}

func (l *loader) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimPrefix(msg, m[0]+": ")
		// yaml.v3 reports these at the 0-based line of the construct that
		// is left open (an unclosed [ or a block mapping); shift to 1-based.
		if strings.HasPrefix(msg, "did not find expected") || strings.HasPrefix(msg, "found a tab character") {
			line++
		}
	} else {
		// yaml.v3 leaves the line out when its mark is on the first line,
		// and always for the reader's encoding errors, which carry only
		// a byte offset it does not print: find that line ourselves.
		line = 1
		if readerError(msg) {
			line = l.unreadableLine()
		}
	}
	l.badAt(line, 0, "fix the YAML syntax (indentation, a missing colon or an unclosed quote)", "not valid YAML: %s", msg)
}

// unreadableLine returns the 1-based line of the first character the YAML
// reader refuses (invalid UTF-8, or a control character YAML does not
// allow), or 1 when every character is allowed.
func (l *loader) unreadableLine() int {
	for i, line := range l.lines {
		if !utf8.ValidString(line) || strings.ContainsFunc(line, func(r rune) bool { return !yamlPrintable(r) }) {
			return i + 1
		}
	}
	return 1
}

// readerError reports whether msg is one of yaml.v3's reader errors: bytes
// that are not text YAML allows.
func readerError(msg string) bool {
	for _, s := range []string{"UTF-8", "UTF-16", "Unicode", "control characters", "surrogate"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// yamlPrintable reports whether YAML allows r in a document (YAML 1.1
// "printable", as yaml.v3's reader checks it; \n is the line separator).
func yamlPrintable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7E) || r == 0x85 ||
		(r >= 0xA0 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// rejectAliases refuses anchors' aliases: they make a reviewed file say one
// thing at one line and mean it at another, and error lines would point at
// the anchor rather than at the use.
func (l *loader) rejectAliases(root *yaml.Node) bool {
	found := false
	stack := []*yaml.Node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Kind == yaml.AliasNode {
			l.bad(n, "write the value out in full", "YAML aliases (*%s) are not supported", n.Value)
			found = true
			continue
		}
		stack = append(stack, n.Content...)
	}
	return found
}

func (l *loader) policy(root *yaml.Node) *Policy {
	m := l.mapping(root, "policy", "schema", "fallback_approver", "defaults", "applications", "roles", "rules", "separation_of_duties")
	if m == nil {
		return nil
	}
	p := &Policy{apps: map[string]*Application{}, roles: map[string]*Role{}}
	pend := &pending{
		roleIncludes: map[*Role][]at{}, roleEnts: map[*Role][]at{},
		ruleRoles: map[*Rule][]at{}, ruleEnts: map[*Rule][]at{},
		sodEnts: map[*SoDRule][]at{}, ruleWhen: map[*Rule]*yaml.Node{},
	}

	if v, n := m.str("schema", true); n != nil && v != strconv.Itoa(SchemaVersion) {
		l.bad(n, "set schema: 1", "unsupported schema %q: this version reads schema %d", v, SchemaVersion)
	}
	if v, n := m.str("fallback_approver", false); n != nil {
		if !hr.ValidEmployeeID(v) {
			l.bad(n, "use an employee ID such as E100000", "fallback_approver %q is not an employee ID", v)
		}
		p.FallbackApprover = v
		pend.fallback = n
	}
	d := l.defaults(m.get("defaults"))

	appNodes := m.seq("applications")
	for i, n := range appNodes {
		if a := l.application(n, i, d); a != nil {
			if prev := p.apps[a.Name]; prev != nil {
				l.bad(n, "give each application a unique name", "application %q is declared twice (first at line %d)", a.Name, prev.Line)
				continue
			}
			p.apps[a.Name] = a
			p.Applications = append(p.Applications, a)
		}
	}
	if an := m.get("applications"); an == nil {
		l.bad(root, "add an applications: list", "the policy declares no applications")
	} else if an.Kind == yaml.SequenceNode && len(appNodes) == 0 {
		l.bad(an, "declare at least one application", "applications is empty")
	}
	for i, n := range m.seq("roles") {
		if r := l.role(n, i, d, pend); r != nil {
			if prev := p.roles[r.Name]; prev != nil {
				l.bad(n, "give each role a unique name", "role %q is declared twice (first at line %d)", r.Name, prev.Line)
				continue
			}
			p.roles[r.Name] = r
			p.Roles = append(p.Roles, r)
		}
	}
	ruleNames := map[string]int{}
	for i, n := range m.seq("rules") {
		if r := l.rule(n, i, pend); r != nil {
			if line, dup := ruleNames[r.Name]; dup {
				l.bad(n, "give each rule a unique name: plans cite rules by name", "rule %q is declared twice (first at line %d)", r.Name, line)
				continue
			}
			ruleNames[r.Name] = r.Line
			p.Rules = append(p.Rules, r)
		}
	}
	sodNames := map[string]int{}
	for i, n := range m.seq("separation_of_duties") {
		if s := l.sod(n, i, d, pend); s != nil {
			if line, dup := sodNames[s.Name]; dup {
				l.bad(n, "give each set a unique name", "separation_of_duties %q is declared twice (first at line %d)", s.Name, line)
				continue
			}
			sodNames[s.Name] = s.Line
			p.SoD = append(p.SoD, s)
		}
	}

	l.resolve(p, pend)
	slices.SortFunc(p.Applications, func(a, b *Application) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(p.Roles, func(a, b *Role) int { return strings.Compare(a.Name, b.Name) })
	return p
}

func (l *loader) defaults(n *yaml.Node) defaults {
	d := defaults{
		approval:  Approval{Require: RequireNone, EscalateAfter: DefaultEscalateAfter, ExpireAfter: DefaultExpireAfter},
		temporary: Temporary{MaxDuration: DefaultMaxTemporary, RemindBefore: DefaultRemindBefore, ExtensionNeedsApproval: true},
		retention: DefaultRetention,
		fallback:  FallbackFlag,
	}
	if n == nil {
		return d
	}
	m := l.mapping(n, "defaults", "approval", "temporary", "leaver")
	if m == nil {
		return d
	}
	if a := m.get("approval"); a != nil {
		am := l.mapping(a, "defaults.approval", "escalate_after", "expire_after")
		d.approval.EscalateAfter = am.dur("escalate_after", d.approval.EscalateAfter, MinApprovalWait, MaxApprovalWait)
		d.approval.ExpireAfter = am.dur("expire_after", d.approval.ExpireAfter, MinApprovalWait, MaxApprovalWait)
		l.checkWaits(cmp.Or(am.get("escalate_after"), am.get("expire_after"), a), "defaults.approval", d.approval)
	}
	if t := m.get("temporary"); t != nil {
		d.temporary = l.temporary(t, "defaults.temporary", d.temporary, false)
	}
	if lv := m.get("leaver"); lv != nil {
		lm := l.mapping(lv, "defaults.leaver", "retention", "disable_fallback")
		d.retention = lm.dur("retention", d.retention, 0, MaxRetention)
		d.fallback = l.disableFallback(lm, "defaults.leaver", d.fallback)
	}
	return d
}

// disableFallback reads a leaver's disable_fallback, keeping def when it is
// absent.
func (l *loader) disableFallback(m *mapping, path, def string) string {
	v, n := m.str("disable_fallback", false)
	if n == nil {
		return def
	}
	if !slices.Contains(disableFallbacks, v) {
		l.bad(n, fixChoice(v, disableFallbacks), "%s: unknown disable_fallback %q", path, v)
		return def
	}
	return v
}

func (l *loader) checkWaits(n *yaml.Node, path string, a Approval) {
	if a.EscalateAfter >= a.ExpireAfter {
		l.bad(n, "make escalate_after shorter than expire_after, or the request expires before anyone escalates it",
			"%s: escalate_after (%s) is not shorter than expire_after (%s)", path, FormatDuration(a.EscalateAfter), FormatDuration(a.ExpireAfter))
	}
}

func (l *loader) application(n *yaml.Node, i int, d defaults) *Application {
	path := fmt.Sprintf("applications[%d]", i)
	m := l.mapping(n, path, "name", "description", "connector", "owner", "settings", "leaver", "entitlements", "reconciliation")
	if m == nil {
		return nil
	}
	a := &Application{Line: n.Line, Retention: d.retention, DisableFallback: d.fallback, Settings: map[string]string{}, ents: map[string]*Entitlement{}}
	name, nn := m.str("name", true)
	if nn != nil && !appNameRe.MatchString(name) {
		l.bad(nn, "use lower-case letters, digits, - and _, starting with a letter", "application name %q is not valid", name)
	}
	if nn == nil {
		return nil
	}
	a.Name = name
	path = "applications[" + name + "]"
	m.path = path
	m.str("description", false)
	if c, cn := m.str("connector", true); cn != nil {
		if !knownConnector(c) {
			l.bad(cn, fixChoice(c, []string{"ldap", "postgres", "scim"}), "%s: unknown connector %q", path, c)
		}
		a.Connector = c
	}
	if o, on := m.str("owner", true); on != nil {
		if !hr.ValidEmployeeID(o) {
			l.bad(on, "use the owner's employee ID (E followed by 6 digits): owner approvals go to that person", "%s: owner %q is not an employee ID", path, o)
		}
		a.Owner = o
	}
	if s := m.get("settings"); s != nil {
		l.settings(s, path+".settings", a.Settings)
	}
	if lv := m.get("leaver"); lv != nil {
		lm := l.mapping(lv, path+".leaver", "retention", "disable_fallback")
		a.Retention = lm.dur("retention", a.Retention, 0, MaxRetention)
		a.DisableFallback = l.disableFallback(lm, path+".leaver", a.DisableFallback)
	}
	if rn := m.get("reconciliation"); rn != nil {
		a.Ignore = l.reconciliation(rn, path+".reconciliation")
	}
	ents := m.seq("entitlements")
	if en := m.get("entitlements"); en != nil && en.Kind == yaml.SequenceNode && len(ents) == 0 {
		l.bad(en, "list the groups or roles the policy may grant", "%s: entitlements is empty", path)
	} else if en == nil {
		l.bad(n, "add an entitlements: list with the groups or roles the policy may grant", "%s has no entitlements", path)
	}
	for j, en := range ents {
		e := l.entitlement(en, a, j, d)
		if e == nil {
			continue
		}
		if prev := a.ents[e.Name]; prev != nil {
			l.bad(en, "give each entitlement a unique name", "%s: entitlement %q is declared twice (first at line %d)", path, e.Name, prev.Line)
			continue
		}
		a.ents[e.Name] = e
		a.Entitlements = append(a.Entitlements, e)
	}
	slices.SortFunc(a.Entitlements, func(x, y *Entitlement) int { return strings.Compare(x.Name, y.Name) })
	return a
}

// settings reads connector settings, refusing anything that looks like a
// secret written into the file: the file is reviewed in pull requests and
// its content is the policy version recorded in workflow histories.
func (l *loader) settings(n *yaml.Node, path string, out map[string]string) {
	if n.Kind != yaml.MappingNode {
		l.bad(n, "write settings as key: value lines", "%s must be a mapping", path)
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !settingRe.MatchString(k.Value) {
			l.bad(k, "use lower_snake_case keys", "%s: setting name %q is not valid", path, k.Value)
			continue
		}
		if _, dup := out[k.Value]; dup {
			l.bad(k, "remove one of them", "%s: setting %q is set twice", path, k.Value)
			continue
		}
		if v.Kind != yaml.ScalarNode {
			l.bad(v, "settings are single values (text, numbers, true/false)", "%s.%s must be a single value", path, k.Value)
			continue
		}
		key := k.Value
		if strings.HasSuffix(key, "_env") {
			if !envNameRe.MatchString(v.Value) {
				l.bad(v, "give the NAME of the environment variable that holds the value, e.g. LDAP_BIND_PASSWORD",
					"%s.%s must name an environment variable, not hold a value", path, key)
				continue
			}
		} else if secretRe.MatchString(key) && !refersToSecret(key) {
			l.bad(k, fmt.Sprintf("remove the value from the file, put it in an environment variable and reference it by name: %s_env: %s",
				key, envSuggestion(path, key)),
				"%s.%s looks like a secret written into the policy file", path, key)
			continue
		} else if u, err := url.Parse(v.Value); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				l.bad(v, "remove the password from the URL and pass it in an environment variable (e.g. password_env: PG_PASSWORD)",
					"%s.%s is a URL carrying a password", path, key)
				continue
			}
		}
		out[key] = v.Value
	}
}

// refersToSecret reports whether a secret-sounding key names where a secret
// is (token_url, password_file) rather than holding it.
func refersToSecret(key string) bool {
	for _, suffix := range []string{"_url", "_file", "_path"} {
		if strings.HasSuffix(key, suffix) {
			return true
		}
	}
	return false
}

// envSuggestion proposes an environment variable name for a secret setting
// of an application, e.g. LDAP_BIND_PASSWORD for ldap's bind_password.
func envSuggestion(path, key string) string {
	app := strings.TrimSuffix(strings.TrimPrefix(path, "applications["), "].settings")
	s := strings.ToUpper(app + "_" + key)
	return strings.Map(func(r rune) rune {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			return r
		}
		return '_'
	}, s)
}

func (l *loader) entitlement(n *yaml.Node, a *Application, j int, d defaults) *Entitlement {
	path := fmt.Sprintf("applications[%s].entitlements[%d]", a.Name, j)
	m := l.mapping(n, path, "name", "description", "risk", "approval", "temporary")
	if m == nil {
		return nil
	}
	name, nn := m.str("name", true)
	if nn == nil {
		return nil
	}
	if !nameRe.MatchString(name) {
		l.bad(nn, "use letters, digits, '.', '-' and '_' (no '/' or spaces), starting with a letter or digit", "%s: entitlement name %q is not valid", path, name)
	}
	path = fmt.Sprintf("%s/%s", a.Name, name)
	m.path = path
	e := &Entitlement{Application: a.Name, Name: name, Line: n.Line}
	e.Description, _ = m.str("description", false)
	if r, rn := m.str("risk", true); rn != nil {
		if !slices.Contains(risks, r) {
			l.bad(rn, fixChoice(r, risks), "%s: unknown risk %q", path, r)
		}
		e.Risk = Risk(r)
	}
	e.Approval = d.approval
	if an := m.get("approval"); an != nil {
		e.Approval = l.approval(an, path+".approval", d.approval)
	}
	e.Temporary = d.temporary
	if tn := m.get("temporary"); tn != nil {
		e.Temporary = l.temporary(tn, path+".temporary", d.temporary, true)
	}
	return e
}

var requirements = []string{string(RequireNone), string(RequireManager), string(RequireOwner), string(RequireManagerThenOwn)}

// approval reads either the short form (approval: manager) or the long form
// (approval: {require: owner, escalate_after: 2d, expire_after: 5d}).
func (l *loader) approval(n *yaml.Node, path string, def Approval) Approval {
	a := def
	var rn *yaml.Node
	var req string
	switch n.Kind {
	case yaml.ScalarNode:
		req, rn = n.Value, n
	case yaml.MappingNode:
		m := l.mapping(n, path, "require", "escalate_after", "expire_after")
		req, rn = m.str("require", true)
		a.EscalateAfter = m.dur("escalate_after", def.EscalateAfter, MinApprovalWait, MaxApprovalWait)
		a.ExpireAfter = m.dur("expire_after", def.ExpireAfter, MinApprovalWait, MaxApprovalWait)
		l.checkWaits(cmp.Or(m.get("escalate_after"), m.get("expire_after"), n), path, a)
	default:
		l.bad(n, "write e.g. approval: manager, or approval: {require: owner, expire_after: 5d}", "%s must be a value or a mapping", path)
		return a
	}
	if rn != nil {
		if !slices.Contains(requirements, req) {
			l.bad(rn, fixChoice(req, requirements), "%s: unknown approval %q", path, req)
		}
		a.Require = Requirement(req)
	}
	return a
}

func (l *loader) temporary(n *yaml.Node, path string, def Temporary, allowOnly bool) Temporary {
	keys := []string{"max_duration", "remind_before", "extension_needs_approval"}
	if allowOnly {
		keys = append(keys, "only")
	}
	m := l.mapping(n, path, keys...)
	t := def
	t.Only = m.boolean("only", false)
	t.MaxDuration = m.dur("max_duration", def.MaxDuration, MinTemporary, MaxTemporary)
	t.RemindBefore = m.dur("remind_before", def.RemindBefore, 0, MaxTemporary)
	t.ExtensionNeedsApproval = m.boolean("extension_needs_approval", def.ExtensionNeedsApproval)
	if m != nil && t.RemindBefore >= t.MaxDuration {
		// A reminder as long as the grant would fire at the grant itself;
		// shorten it rather than fail when only max_duration was lowered.
		if m.get("remind_before") != nil {
			l.bad(m.get("remind_before"), "make remind_before shorter than max_duration",
				"%s: remind_before (%s) is not shorter than max_duration (%s)", path, FormatDuration(t.RemindBefore), FormatDuration(t.MaxDuration))
		} else {
			t.RemindBefore = t.MaxDuration / 4
		}
	}
	return t
}

// named opens entry i of a top-level list (roles, rules,
// separation_of_duties): a mapping with a valid name, whose later problems
// are reported under list[name]. It returns nil when the entry is unusable
// (the problem is already recorded).
func (l *loader) named(n *yaml.Node, list string, i int, what string, keys ...string) (*mapping, string) {
	path := fmt.Sprintf("%s[%d]", list, i)
	m := l.mapping(n, path, append([]string{"name", "description"}, keys...)...)
	if m == nil {
		return nil, ""
	}
	name, nn := m.str("name", true)
	if nn == nil {
		return nil, ""
	}
	if !nameRe.MatchString(name) {
		l.bad(nn, "use letters, digits, '.', '-' and '_'", "%s: %s %q is not valid", path, what, name)
	}
	m.path = list + "[" + name + "]"
	return m, name
}

func (l *loader) role(n *yaml.Node, i int, d defaults, pend *pending) *Role {
	m, name := l.named(n, "roles", i, "role name", "includes", "entitlements", "approval")
	if m == nil {
		return nil
	}
	path := m.path
	r := &Role{Name: name, Line: n.Line, Approval: d.approval}
	r.Description, _ = m.str("description", false)
	if an := m.get("approval"); an != nil {
		r.Approval = l.approval(an, path+".approval", d.approval)
		if r.Approval.Require != RequireNone && pend.needApprover == nil {
			pend.needApprover = an
		}
	}
	pend.roleIncludes[r] = m.strs("includes")
	pend.roleEnts[r] = m.strs("entitlements")
	if len(pend.roleIncludes[r]) == 0 && len(pend.roleEnts[r]) == 0 {
		l.bad(n, "list entitlements: (application/entitlement) or includes: (other roles)", "%s grants nothing", path)
	}
	return r
}

func (l *loader) rule(n *yaml.Node, i int, pend *pending) *Rule {
	m, name := l.named(n, "rules", i, "rule name", "when", "roles", "entitlements")
	if m == nil {
		return nil
	}
	path := m.path
	r := &Rule{Name: name, Line: n.Line}
	r.Description, _ = m.str("description", false)
	var wn *yaml.Node
	r.When, wn = m.str("when", true)
	if wn != nil {
		if len(r.When) > maxExpressionLen {
			l.bad(wn, "split the rule", "%s: condition is longer than %d characters", path, maxExpressionLen)
		} else {
			pend.ruleWhen[r] = wn
		}
	}
	pend.ruleRoles[r] = m.strs("roles")
	pend.ruleEnts[r] = m.strs("entitlements")
	if len(pend.ruleRoles[r]) == 0 && len(pend.ruleEnts[r]) == 0 {
		l.bad(n, "list roles: or entitlements: to grant", "%s grants nothing", path)
	}
	return r
}

var sodActions = []string{string(SoDBlock), string(SoDRequireApproval)}

func (l *loader) sod(n *yaml.Node, i int, d defaults, pend *pending) *SoDRule {
	m, name := l.named(n, "separation_of_duties", i, "name", "entitlements", "action", "approver")
	if m == nil {
		return nil
	}
	path := m.path
	s := &SoDRule{Name: name, Line: n.Line, Approval: d.approval}
	s.Description, _ = m.str("description", false)
	pend.sodEnts[s] = m.strs("entitlements")
	if len(pend.sodEnts[s]) < 2 {
		l.bad(n, "list at least two entitlements that must not be held together", "%s needs at least two entitlements", path)
	}
	act, an := m.str("action", true)
	if an != nil && !slices.Contains(sodActions, act) {
		l.bad(an, fixChoice(act, sodActions), "%s: unknown action %q", path, act)
	}
	s.Action = SoDAction(act)
	appr, apn := m.str("approver", false)
	switch {
	case s.Action == SoDRequireApproval && apn == nil:
		l.bad(n, "add approver: with the employee ID who may allow the combination", "%s: action require_approval needs an approver", path)
	case s.Action == SoDBlock && apn != nil:
		l.bad(apn, "remove approver, or use action: require_approval", "%s: a block has no approver", path)
	case apn != nil && !hr.ValidEmployeeID(appr):
		l.bad(apn, "use an employee ID such as E100000", "%s: approver %q is not an employee ID", path, appr)
	}
	if s.Action == SoDRequireApproval {
		s.Approver = appr
		if pend.needApprover == nil {
			pend.needApprover = n
		}
	}
	return s
}

// resolve checks every reference between sections, role cycles, and
// compiles the conditions.
func (l *loader) resolve(p *Policy, pend *pending) {
	for _, a := range p.Applications {
		for _, e := range a.Entitlements {
			if e.Approval.Require != RequireNone && pend.needApprover == nil {
				pend.needApprover = &yaml.Node{Line: e.Line}
			}
		}
	}
	if pend.needApprover != nil && pend.fallback == nil {
		l.bad(pend.needApprover, "add fallback_approver: EMPLOYEE_ID at the top of the file",
			"the policy has approvals but no fallback_approver for steps nobody else can approve (a person approving their own access)")
	}

	for _, r := range p.Roles {
		r.Entitlements = l.refs(p, pend.roleEnts[r], "roles["+r.Name+"]")
		seen := map[string]bool{}
		for _, inc := range pend.roleIncludes[r] {
			switch {
			case inc.v == r.Name:
				l.bad(inc.n, "remove it from includes", "role %q includes itself", r.Name)
			case p.roles[inc.v] == nil:
				l.bad(inc.n, fixName("role", inc.v, roleNames(p)), "roles[%s]: unknown role %q in includes", r.Name, inc.v)
			case seen[inc.v]:
				l.bad(inc.n, "remove the duplicate", "roles[%s]: role %q is included twice", r.Name, inc.v)
			default:
				seen[inc.v] = true
				r.Includes = append(r.Includes, inc.v)
			}
		}
	}
	if !l.findCycles(p, pend) {
		l.boundPaths(p)
	}

	for _, r := range p.Rules {
		r.Entitlements = l.refs(p, pend.ruleEnts[r], "rules["+r.Name+"]")
		seen := map[string]bool{}
		for _, rn := range pend.ruleRoles[r] {
			switch {
			case p.roles[rn.v] == nil:
				l.bad(rn.n, fixName("role", rn.v, roleNames(p)), "rules[%s]: unknown role %q", r.Name, rn.v)
			case seen[rn.v]:
				l.bad(rn.n, "remove the duplicate", "rules[%s]: role %q is listed twice", r.Name, rn.v)
			default:
				seen[rn.v] = true
				r.Roles = append(r.Roles, rn.v)
			}
		}
		if wn := pend.ruleWhen[r]; wn != nil {
			l.compile(r, wn)
		}
	}

	for _, s := range p.SoD {
		s.Entitlements = l.refs(p, pend.sodEnts[s], "separation_of_duties["+s.Name+"]")
		slices.SortFunc(s.Entitlements, compareRefs)
	}
}

// refs resolves application/entitlement references, reporting unknown ones.
func (l *loader) refs(p *Policy, in []at, path string) []Ref {
	var out []Ref
	seen := map[Ref]bool{}
	for _, s := range in {
		r, err := ParseRef(s.v)
		if err != nil {
			l.bad(s.n, "write application/entitlement, e.g. ldap/engineering", "%s: %v", path, err)
			continue
		}
		a := p.apps[r.Application]
		if a == nil {
			l.bad(s.n, fixName("application", r.Application, appNames(p)), "%s: unknown application %q in %q", path, r.Application, s.v)
			continue
		}
		if a.ents[r.Entitlement] == nil {
			var names []string
			for _, e := range a.Entitlements {
				names = append(names, e.Name)
			}
			l.bad(s.n, fixName("entitlement", r.Entitlement, names)+" (or declare it under applications["+a.Name+"].entitlements)",
				"%s: application %q has no entitlement %q", path, a.Name, r.Entitlement)
			continue
		}
		if seen[r] {
			l.bad(s.n, "remove the duplicate", "%s: %s is listed twice", path, r)
			continue
		}
		seen[r] = true
		out = append(out, r)
	}
	return out
}

// findCycles reports roles that include themselves through other roles
// (a includes b includes a), which would make planning loop.
func (l *loader) findCycles(p *Policy, pend *pending) bool {
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	reported := map[string]bool{}
	var visit func(r *Role)
	visit = func(r *Role) {
		state[r.Name] = onStack
		stack = append(stack, r.Name)
		for _, inc := range r.Includes {
			switch state[inc] {
			case onStack:
				i := slices.Index(stack, inc)
				cycle := append(slices.Clone(stack[i:]), inc)
				key := strings.Join(cycle, ">")
				if !reported[key] {
					reported[key] = true
					n := &yaml.Node{Line: r.Line}
					for _, a := range pend.roleIncludes[r] {
						if a.v == inc {
							n = a.n
						}
					}
					l.bad(n, "remove one of the includes so no role contains itself",
						"roles form a cycle: %s", strings.Join(cycle, " includes "))
				}
			case unvisited:
				visit(p.roles[inc])
			}
		}
		stack = stack[:len(stack)-1]
		state[r.Name] = done
	}
	for _, r := range p.Roles {
		if state[r.Name] == unvisited {
			visit(r)
		}
	}
	return len(reported) > 0
}

// maxRolePaths bounds the ways one role reaches its included roles. Plans
// cite every path as a reason, so a diamond-heavy hierarchy would make plans
// explode; real hierarchies have a handful.
const maxRolePaths = 256

// boundPaths refuses role hierarchies with too many include paths. It runs
// only on an acyclic hierarchy.
func (l *loader) boundPaths(p *Policy) {
	memo := map[string]int{}
	var paths func(name string) int
	paths = func(name string) int {
		if n, ok := memo[name]; ok {
			return n
		}
		n := 1
		for _, inc := range p.roles[name].Includes {
			n += paths(inc)
			if n > maxRolePaths {
				n = maxRolePaths + 1
				break
			}
		}
		memo[name] = n
		return n
	}
	for _, r := range p.Roles {
		if paths(r.Name) > maxRolePaths {
			l.badAt(r.Line, 0, "flatten the role hierarchy: include each role once",
				"role %q reaches included roles through more than %d paths", r.Name, maxRolePaths)
		}
	}
}

func (l *loader) compile(r *Rule, wn *yaml.Node) {
	if l.env == nil {
		env, err := newCELEnv()
		if err != nil {
			l.bad(wn, "this is a bug in provisio; please report it", "%v", err)
			return
		}
		l.env = env
	}
	prg, probs := compileCondition(l.env, r.When)
	for _, cp := range probs {
		line, col := l.exprPosition(wn, cp.line, cp.col)
		l.badAt(line, col, cp.fix, "rules[%s].when: %s", r.Name, cp.msg)
	}
	r.prg = prg
}

// exprPosition maps a position inside an expression (CEL's 1-based line,
// 0-based column) to the file. A literal block (when: |) keeps its lines; a
// folded or multi-line flow scalar was joined with spaces, so the offset is
// walked back over the source lines it came from.
func (l *loader) exprPosition(n *yaml.Node, line, col int) (int, int) {
	line = max(line, 1)
	if n.Style == yaml.LiteralStyle {
		return n.Line + line, 0
	}
	quoted := n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle
	if n.Style != yaml.FoldedStyle && !strings.Contains(n.Value, "\n") {
		// Most conditions: one line after the key; the column is exact
		// unless the scalar continues on the next lines.
		first := l.sourceLine(n.Line)
		start := min(max(n.Column-1, 0), len(first))
		if quoted {
			start = min(start+1, len(first))
		}
		if col <= len(strings.TrimRight(first[start:], " \t")) {
			return n.Line, n.Column + col + boolIndex(quoted)
		}
	}
	off := col
	for i, v := range strings.Split(n.Value, "\n") {
		if i >= line-1 {
			break
		}
		off += len(v) + 1
	}
	ln, pos := n.Line, 0
	if n.Style == yaml.FoldedStyle {
		ln++
	}
	for ; ln <= len(l.lines); ln++ {
		src := l.sourceLine(ln)
		if ln == n.Line {
			src = src[min(max(n.Column-1, 0)+boolIndex(quoted), len(src)):]
		}
		seg := len(strings.TrimSpace(src))
		if off <= pos+seg {
			return ln, 0
		}
		pos += seg + 1
	}
	return n.Line, 0
}

func (l *loader) sourceLine(n int) string {
	if n < 1 || n > len(l.lines) {
		return ""
	}
	return l.lines[n-1]
}

func appNames(p *Policy) []string {
	names := make([]string, 0, len(p.apps))
	for n := range p.apps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func roleNames(p *Policy) []string {
	names := make([]string, 0, len(p.roles))
	for n := range p.roles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// fixName proposes the closest known name, or lists the known ones.
func fixName(kind, got string, known []string) string {
	if s := suggest(got, known); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	if len(known) == 0 {
		return "declare the " + kind + " first"
	}
	if len(known) > 12 {
		known = append(slices.Clone(known[:12]), "...")
	}
	return fmt.Sprintf("known %ss: %s", kind, strings.Join(known, ", "))
}

func fixChoice(got string, allowed []string) string {
	fix := "use one of: " + strings.Join(allowed, ", ")
	if s := suggest(got, allowed); s != "" {
		fix = fmt.Sprintf("did you mean %q? %s", s, fix)
	}
	return fix
}

// mapping is a YAML mapping whose keys have been checked against the
// allowed set. All methods accept a nil receiver (a node that was not a
// mapping, already reported) and then return zero values.
type mapping struct {
	l    *loader
	path string
	node *yaml.Node
	vals map[string]*yaml.Node
}

func (l *loader) mapping(n *yaml.Node, path string, allowed ...string) *mapping {
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			l.bad(n, "fill it in or remove the key", "%s is empty", path)
			return nil
		}
		l.bad(n, "write it as key: value lines", "%s must be a mapping (key: value), got %s", path, kindName(n))
		return nil
	}
	m := &mapping{l: l, path: path, node: n, vals: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.bad(k, "keys are plain words such as name", "%s: a key must be a plain word", path)
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			l.bad(k, fixChoice(k.Value, allowed), "%s: unknown field %q", path, k.Value)
			continue
		}
		if _, dup := m.vals[k.Value]; dup {
			l.bad(k, "remove one of them", "%s: %s is set twice", path, k.Value)
			continue
		}
		m.vals[k.Value] = v
	}
	return m
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", clip(n.Value))
	}
	return "something else"
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// get returns the value node of key, nil if absent or null.
func (m *mapping) get(key string) *yaml.Node {
	if m == nil {
		return nil
	}
	n := m.vals[key]
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	return n
}

// str returns a scalar value and its node; the node is nil when the key is
// absent (reported if required) or not a single value (reported).
func (m *mapping) str(key string, required bool) (string, *yaml.Node) {
	if m == nil {
		return "", nil
	}
	n := m.get(key)
	if n == nil {
		if required {
			at := m.node
			if v := m.vals[key]; v != nil {
				at = v
			}
			m.l.bad(at, "add "+key+": ...", "%s: %s is required", m.path, key)
		}
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		m.l.bad(n, "write a single value", "%s: %s must be a single value, got %s", m.path, key, kindName(n))
		return "", nil
	}
	if strings.TrimSpace(n.Value) == "" && required {
		m.l.bad(n, "fill it in", "%s: %s is empty", m.path, key)
		return "", nil
	}
	return n.Value, n
}

func (m *mapping) boolean(key string, def bool) bool {
	v, n := m.str(key, false)
	if n == nil {
		return def
	}
	switch v {
	case "true":
		return true
	case "false":
		return false
	}
	m.l.bad(n, "write true or false", "%s: %s must be true or false, got %q", m.path, key, clip(v))
	return def
}

func (m *mapping) dur(key string, def, lo, hi time.Duration) time.Duration {
	v, n := m.str(key, false)
	if n == nil {
		return def
	}
	d, err := ParseDuration(v)
	if err != nil {
		m.l.bad(n, "write a duration such as 72h, 30m or 3d", "%s: %s: %v", m.path, key, err)
		return def
	}
	if d < lo || d > hi {
		m.l.bad(n, fmt.Sprintf("use a value from %s to %s", FormatDuration(lo), FormatDuration(hi)),
			"%s: %s %s is out of range", m.path, key, v)
		return def
	}
	return d
}

// seq returns the items of a list; null or absent is an empty list.
func (m *mapping) seq(key string) []*yaml.Node {
	n := m.get(key)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		m.l.bad(n, "write it as a list (lines starting with '- ')", "%s: %s must be a list, got %s", m.path, key, kindName(n))
		return nil
	}
	return n.Content
}

// strs returns a list of single values with their nodes.
func (m *mapping) strs(key string) []at {
	var out []at
	for _, n := range m.seq(key) {
		if n.Kind != yaml.ScalarNode || strings.TrimSpace(n.Value) == "" {
			m.l.bad(n, "write one name per item, e.g. [ldap/engineering, ldap/vpn]", "%s: %s items must be names, got %s", m.path, key, kindName(n))
			continue
		}
		out = append(out, at{v: n.Value, n: n})
	}
	return out
}
