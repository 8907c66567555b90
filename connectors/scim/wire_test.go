package scim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
)

func TestFilterString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ada", `"ada"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{`\"`, `"\\\""`},
		{"a\nb\tc\r", `"a\nb\tc\r"`},
		{"nul\x00", `"nul\u0000"`},
		{"esc\x1b", `"esc\u001B"`},
		{"josé 山田", `"josé 山田"`},
		{"", `""`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := filterString(tc.in)
			assert.Equal(t, tc.want, got)
			var back string
			require.NoError(t, json.Unmarshal([]byte(got), &back), "a filter string is a JSON string")
			assert.Equal(t, tc.in, back)
		})
	}
}

func TestQueryEncodesSpacesAsPercent20(t *testing.T) {
	assert.Equal(t, "filter=userName%20eq%20%22a%2Bb%26c%22&count=3", query("filter", `userName eq "a+b&c"`, "count", "3"))
}

func TestPageToken(t *testing.T) {
	for _, start := range []int{1, 4, 5001} {
		got, ok := decodePageToken(encodePageToken(start))
		assert.True(t, ok)
		assert.Equal(t, start, got)
	}
	for _, bad := range []string{"x", "4", encodePageToken(0), "c2NpbTE6LTE"} {
		_, ok := decodePageToken(bad)
		assert.False(t, ok, bad)
	}
}

func TestInvalidPageTokenIsInvalid(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1/scim/v2", Token: "t"})
	require.NoError(t, err)
	_, err = c.ListAccounts(t.Context(), connectors.ListAccountsRequest{PageToken: "garbage"})
	assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "%v", err)
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		t.Run(tc.h, func(t *testing.T) {
			got, ok := retryAfter(tc.h, now)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestTolerantDecoding(t *testing.T) {
	var lr listResponse[user]
	require.NoError(t, json.Unmarshal([]byte(`{
		"resources": [
			{"id": "1", "UserName": "a", "active": "False", "emails": [{"value": "a@x", "primary": "true"}]},
			{"id": "2", "userName": "b", "active": true, "groups": []},
			{"id": "3", "userName": "c"}
		],
		"totalResults": "3"
	}`), &lr))
	require.Len(t, lr.Resources, 3)
	require.NotNil(t, lr.TotalResults)
	assert.Equal(t, flexInt(3), *lr.TotalResults)
	a, b, c := lr.Resources[0], lr.Resources[1], lr.Resources[2]
	assert.Equal(t, "a", a.UserName)
	assert.False(t, a.isActive())
	assert.Equal(t, "a@x", primaryEmail(a.Emails))
	assert.Nil(t, a.Groups, "absent groups attribute")
	assert.True(t, b.isActive())
	require.NotNil(t, b.Groups, "present but empty groups attribute")
	assert.Empty(t, *b.Groups)
	assert.True(t, c.isActive(), "absent active is taken as active")

	var bad flexBool
	assert.Error(t, json.Unmarshal([]byte(`"maybe"`), &bad))
}

func TestLastPage(t *testing.T) {
	n := func(v int) *flexInt { f := flexInt(v); return &f }
	for _, tc := range []struct {
		name       string
		lr         listResponse[user]
		start, got int
		want       bool
	}{
		{"empty page", listResponse[user]{}, 1, 0, true},
		{"more by totalResults", listResponse[user]{TotalResults: n(7)}, 1, 3, false},
		{"end by totalResults", listResponse[user]{TotalResults: n(7)}, 7, 1, true},
		{"full page, no total", listResponse[user]{}, 1, 3, false},
		{"short page, no total", listResponse[user]{}, 1, 2, true},
		{"server caps the page size", listResponse[user]{ItemsPerPage: n(2)}, 1, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, lastPage(tc.lr, tc.start, tc.got, 3))
		})
	}
}

func TestConfigNeverPrintsTheToken(t *testing.T) {
	cfg := Config{Name: "app", BaseURL: "https://app.example.com/scim/v2", Token: "s3cr3t-t0ken"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, cfg)
		assert.NotContains(t, out, "s3cr3t-t0ken", format)
		assert.Contains(t, out, "[REDACTED]", format)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no base URL", Config{Token: "t"}},
		{"not http", Config{BaseURL: "ftp://x/scim", Token: "t"}},
		{"no host", Config{BaseURL: "http:///scim", Token: "t"}},
		{"credentials in URL", Config{BaseURL: "https://u:secretpw@x/scim", Token: "t"}},
		{"query in URL", Config{BaseURL: "https://x/scim?a=b", Token: "t"}},
		{"no token", Config{BaseURL: "https://x/scim"}},
		{"multi-line token", Config{BaseURL: "https://x/scim", Token: "a\nb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.Error(t, err)
			assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err))
			assert.NotContains(t, err.Error(), "secretpw")
		})
	}
	c, err := New(Config{BaseURL: "https://x/scim/v2/", Token: "t"})
	require.NoError(t, err)
	assert.Equal(t, DefaultName, c.Name())
	assert.Equal(t, "https://x/scim/v2", c.base)
	assert.Equal(t, DefaultMaxRetryAfter, c.maxRetryAfter)
}
