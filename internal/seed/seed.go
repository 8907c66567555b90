package seed

import (
	"context"
	"errors"
	"fmt"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/policy"
)

// Entitlements ensures that every entitlement declared in p exists in its
// application, using the connector whose Name is the application's name.
// Connectors that do not implement connectors.EntitlementCatalog are skipped
// with a log line. log receives one line per created entitlement and a
// summary at the end; nil discards them.
//
// A failure does not stop the other entitlements from being seeded: every
// failure is returned, joined, each naming application and entitlement.
// Only the end of ctx stops early. Running it again creates nothing more.
func Entitlements(ctx context.Context, p *policy.Policy, conns map[string]connectors.Connector, log func(format string, args ...any)) error {
	if log == nil {
		log = func(string, ...any) {}
	}
	byName, err := index(conns)
	if err != nil {
		return err
	}
	var (
		created, present, failed, skipped int
		errs                              []error
	)
	for _, app := range p.Applications {
		conn, ok := byName[app.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("seed application %q: no connector is named %q", app.Name, app.Name))
			failed += len(app.Entitlements)
			continue
		}
		catalog, ok := conn.(connectors.EntitlementCatalog)
		if !ok {
			log("%s: skipped (%d declared): its connector cannot create entitlements, so create them in the application",
				app.Name, len(app.Entitlements))
			skipped++
			continue
		}
		for _, e := range app.Entitlements {
			if err := ctx.Err(); err != nil {
				return errors.Join(append(errs, fmt.Errorf("seed entitlements: %w", err))...)
			}
			r, err := catalog.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: e.Name, Description: e.Description})
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("seed entitlement %s/%s: %w", app.Name, e.Name, err))
				failed++
			case r.Changed:
				log("%s/%s: created", app.Name, e.Name)
				created++
			default:
				present++
			}
		}
	}
	log("entitlements: %d created, %d already present, %d failed; %d applications skipped", created, present, failed, skipped)
	return errors.Join(errs...)
}

// index keys the connectors by their Name, which is what policy
// applications refer to; two connectors claiming one name are a
// configuration error.
func index(conns map[string]connectors.Connector) (map[string]connectors.Connector, error) {
	byName := make(map[string]connectors.Connector, len(conns))
	for key, c := range conns {
		if c == nil {
			return nil, fmt.Errorf("seed: connector %q is nil", key)
		}
		name := c.Name()
		if _, dup := byName[name]; dup {
			return nil, fmt.Errorf("seed: two connectors are named %q", name)
		}
		byName[name] = c
	}
	return byName, nil
}
