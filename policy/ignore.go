package policy

import (
	pathpkg "path"
	"slices"

	"gopkg.in/yaml.v3"
)

// maxIgnorePatterns bounds an application's ignore list: every listed
// account is matched against each pattern.
const maxIgnorePatterns = 100

// Ignored returns the first Ignore pattern username matches, and whether
// one does. Reconciliation reports such an account as unmanaged and never
// changes it.
func (a *Application) Ignored(username string) (pattern string, ok bool) {
	for _, p := range a.Ignore {
		// Patterns were checked at load, so Match cannot fail here.
		if m, _ := pathpkg.Match(p, username); m {
			return p, true
		}
	}
	return "", false
}

// reconciliation reads an application's reconciliation section:
//
//	reconciliation:
//	  ignore: [svc-*, backup-agent]
//
// and returns its ignore patterns.
func (l *loader) reconciliation(n *yaml.Node, where string) []string {
	m := l.mapping(n, where, "ignore")
	var out []string
	for _, p := range m.strs("ignore") {
		if _, err := pathpkg.Match(p.v, ""); err != nil {
			l.bad(p.n, "use * and ? wildcards or [a-z] classes, e.g. svc-*", "%s.ignore: pattern %q is not valid: %v", where, clip(p.v), err)
			continue
		}
		if slices.Contains(out, p.v) {
			l.bad(p.n, "remove one of them", "%s.ignore: pattern %q is listed twice", where, clip(p.v))
			continue
		}
		out = append(out, p.v)
	}
	if len(out) > maxIgnorePatterns {
		l.bad(m.get("ignore"), "use wildcards to cover many accounts with one pattern", "%s.ignore lists %d patterns, more than %d", where, len(out), maxIgnorePatterns)
		return nil
	}
	return out
}
