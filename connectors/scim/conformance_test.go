package scim

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/provisio-dev/provisio/connectors/conformance"
)

func TestConformance(t *testing.T) {
	srv := startServer(t, nil)
	conformance.Run(t, conformance.Harness{
		Connector:    newClient(t, srv, nil),
		Prefix:       "scimconf",
		Entitlements: []string{"engineering", "sales"},
		Login:        login(srv),
	})
}

// TestConformanceDialect runs the whole suite again against a server that
// sends string booleans, no totalResults and no "groups" on Users (so
// memberships come from the members filter on /Groups), and receives PATCH
// ops in title case.
func TestConformanceDialect(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, func(h http.Handler) http.Handler { return rec.wrap(dialect(h)) })
	conformance.Run(t, conformance.Harness{
		Connector:    newClient(t, srv, nil),
		Prefix:       "scimdialect",
		Entitlements: []string{"support", "finance-admins"},
		Login:        login(srv),
	})
	assert.True(t, slices.ContainsFunc(rec.requests(http.MethodGet), func(r recorded) bool {
		return strings.HasPrefix(r.Filter, "members[value eq ")
	}), "without a groups attribute, memberships are read with the members filter")
}
