package scimapp

import (
	"encoding/json"
	"testing"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func userPatcher() patcher {
	return patcher{core: withExternalID(schema.CoreUserSchema()), extensions: []schema.Schema{schema.ExtensionEnterpriseUser()}}
}

func doc(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	return m
}

func op(t *testing.T, o, path string, value any) scim.PatchOperation {
	t.Helper()
	p := scim.PatchOperation{Op: o, Value: value}
	if path != "" {
		parsed, err := filter.ParsePath([]byte(path))
		require.NoError(t, err)
		p.Path = &parsed
	}
	return p
}

func TestPatcherApply(t *testing.T) {
	const base = `{"userName":"ada","active":true,"name":{"givenName":"Ada","familyName":"Lovelace"},
		"emails":[{"value":"ada@home","type":"home","primary":false},{"value":"ada@work","type":"work","primary":true}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"E1"}}`
	for _, tc := range []struct {
		name    string
		op      func(t *testing.T) scim.PatchOperation
		want    string // JSON of the resulting document; empty when an error is expected
		wantErr error
	}{
		{"replace a simple attribute", func(t *testing.T) scim.PatchOperation { return op(t, "replace", "active", false) },
			`{"userName":"ada","active":false,"name":{"givenName":"Ada","familyName":"Lovelace"},
			"emails":[{"value":"ada@home","type":"home","primary":false},{"value":"ada@work","type":"work","primary":true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"E1"}}`, nil},
		{"replace a sub-attribute", func(t *testing.T) scim.PatchOperation { return op(t, "replace", "name.familyName", "King") },
			`{"userName":"ada","active":true,"name":{"givenName":"Ada","familyName":"King"},
			"emails":[{"value":"ada@home","type":"home","primary":false},{"value":"ada@work","type":"work","primary":true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"E1"}}`, nil},
		{"remove a sub-attribute", func(t *testing.T) scim.PatchOperation { return op(t, "remove", "name.givenName", nil) },
			`{"userName":"ada","active":true,"name":{"familyName":"Lovelace"},
			"emails":[{"value":"ada@home","type":"home","primary":false},{"value":"ada@work","type":"work","primary":true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"E1"}}`, nil},
		{"replace through a value filter", func(t *testing.T) scim.PatchOperation {
			return op(t, "replace", `emails[type eq "work"].value`, "ada@new")
		}, `{"userName":"ada","active":true,"name":{"givenName":"Ada","familyName":"Lovelace"},
			"emails":[{"value":"ada@home","type":"home","primary":false},{"value":"ada@new","type":"work","primary":true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"E1"}}`, nil},
		{"remove through a value filter", func(t *testing.T) scim.PatchOperation {
			return op(t, "remove", `emails[value eq "ada@home"]`, nil)
		}, `{"userName":"ada","active":true,"name":{"givenName":"Ada","familyName":"Lovelace"},
			"emails":[{"value":"ada@work","type":"work","primary":true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"E1"}}`, nil},
		{"remove with a filter matching nothing is a no-op", func(t *testing.T) scim.PatchOperation {
			return op(t, "remove", `emails[value eq "nobody"]`, nil)
		}, base, nil},
		{"replace with a filter matching nothing", func(t *testing.T) scim.PatchOperation {
			return op(t, "replace", `emails[value eq "nobody"].type`, "other")
		}, "", scimerrors.ScimErrorNoTarget},
		{"add a primary email demotes the old one", func(t *testing.T) scim.PatchOperation {
			return op(t, "add", "emails", []any{map[string]any{"value": "ada@x", "type": "other", "primary": true}})
		}, `{"userName":"ada","active":true,"name":{"givenName":"Ada","familyName":"Lovelace"},
			"emails":[{"value":"ada@home","type":"home","primary":false},{"value":"ada@work","type":"work","primary":false},
			{"value":"ada@x","type":"other","primary":true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"E1"}}`, nil},
		{"extension attribute by full path", func(t *testing.T) scim.PatchOperation {
			return op(t, "replace", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "E2")
		}, `{"userName":"ada","active":true,"name":{"givenName":"Ada","familyName":"Lovelace"},
			"emails":[{"value":"ada@home","type":"home","primary":false},{"value":"ada@work","type":"work","primary":true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"E2"}}`, nil},
		{"no path: attributes and an extension container", func(t *testing.T) scim.PatchOperation {
			return op(t, "replace", "", map[string]any{
				"displayName": "Ada L",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"employeeNumber": "E3"},
			})
		}, `{"userName":"ada","active":true,"displayName":"Ada L","name":{"givenName":"Ada","familyName":"Lovelace"},
			"emails":[{"value":"ada@home","type":"home","primary":false},{"value":"ada@work","type":"work","primary":true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"E3"}}`, nil},
		{"read-only groups", func(t *testing.T) scim.PatchOperation {
			return op(t, "add", "groups", []any{map[string]any{"value": "g"}})
		}, "", scimerrors.ScimErrorMutability},
		{"remove without a path", func(t *testing.T) scim.PatchOperation { return op(t, "remove", "", nil) }, "", scimerrors.ScimErrorNoTarget},
		{"sub-attribute of a multi-valued attribute without a filter", func(t *testing.T) scim.PatchOperation {
			return op(t, "replace", "emails.value", "x")
		}, "", scimerrors.ScimErrorInvalidPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := doc(t, base)
			err := userPatcher().apply(d, tc.op(t))
			if tc.wantErr != nil {
				assert.Equal(t, tc.wantErr, err)
				return
			}
			require.NoError(t, err)
			got, err := json.Marshal(d)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
		})
	}
}

func TestPatcherMembers(t *testing.T) {
	p := patcher{core: withExternalID(schema.CoreGroupSchema())}
	const base = `{"displayName":"eng","members":[{"value":"a","type":"User"},{"value":"b","type":"User"}]}`
	for _, tc := range []struct {
		name string
		op   func(t *testing.T) scim.PatchOperation
		want string
	}{
		{"add one member", func(t *testing.T) scim.PatchOperation {
			return op(t, "add", "members", []any{map[string]any{"value": "c"}})
		}, `{"displayName":"eng","members":[{"value":"a","type":"User"},{"value":"b","type":"User"},{"value":"c"}]}`},
		{"add a present member", func(t *testing.T) scim.PatchOperation {
			return op(t, "add", "members", []any{map[string]any{"value": "A"}})
		}, `{"displayName":"eng","members":[{"value":"A","type":"User"},{"value":"b","type":"User"}]}`},
		{"remove one member by filter", func(t *testing.T) scim.PatchOperation {
			return op(t, "remove", `members[value eq "a"]`, nil)
		}, `{"displayName":"eng","members":[{"value":"b","type":"User"}]}`},
		{"remove one member named in value (Azure AD)", func(t *testing.T) scim.PatchOperation {
			return op(t, "remove", "members", []any{map[string]any{"value": "b"}})
		}, `{"displayName":"eng","members":[{"value":"a","type":"User"}]}`},
		{"remove every member", func(t *testing.T) scim.PatchOperation { return op(t, "remove", "members", nil) },
			`{"displayName":"eng"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := doc(t, base)
			require.NoError(t, p.apply(d, tc.op(t)))
			got, err := json.Marshal(d)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
		})
	}
}

func TestUnescapeFilter(t *testing.T) {
	for _, tc := range []struct{ filter, want string }{
		{`userName eq "plain"`, "plain"},
		{`userName eq "a\"b"`, `a"b`},
		{`userName eq "a\\b"`, `a\b`},
		{`userName eq "line\nbreak\u0041"`, "line\nbreakA"},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			e, err := filter.ParseFilter([]byte(tc.filter))
			require.NoError(t, err)
			require.NoError(t, unescapeFilter(e))
			_, value, ok := equality(e, "")
			require.True(t, ok)
			assert.Equal(t, tc.want, value)
		})
	}
}
