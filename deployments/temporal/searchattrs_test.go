package main

import (
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
)

func TestEmbeddedSearchAttributes(t *testing.T) {
	got, err := parseSearchAttributes(searchAttributesFile)
	require.NoError(t, err)
	require.Equal(t, map[string]enumspb.IndexedValueType{
		"EmployeeId":          enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"LifecycleEvent":      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"LifecycleState":      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"WaitingApprovers":    enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		"ApplicationsTouched": enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		"NeedsAttention":      enumspb.INDEXED_VALUE_TYPE_BOOL,
	}, got)
}

func TestParseSearchAttributes(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    map[string]enumspb.IndexedValueType
		wantErr string
	}{
		{
			name: "comments, blank lines and every type",
			text: "# header\n\nA Text\nB Keyword # trailing\n  C Int\nD Double\nE Bool\nF Datetime\nG KeywordList\n",
			want: map[string]enumspb.IndexedValueType{
				"A": enumspb.INDEXED_VALUE_TYPE_TEXT,
				"B": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
				"C": enumspb.INDEXED_VALUE_TYPE_INT,
				"D": enumspb.INDEXED_VALUE_TYPE_DOUBLE,
				"E": enumspb.INDEXED_VALUE_TYPE_BOOL,
				"F": enumspb.INDEXED_VALUE_TYPE_DATETIME,
				"G": enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
			},
		},
		{name: "empty", text: "", want: map[string]enumspb.IndexedValueType{}},
		{name: "missing type", text: "A\n", wantErr: "line 1"},
		{name: "extra field", text: "A Keyword x\n", wantErr: "want \"Name Type\""},
		{name: "unknown type", text: "\nA Keywords\n", wantErr: "line 2: unknown type \"Keywords\""},
		{name: "unspecified type", text: "A Unspecified\n", wantErr: "unknown type"},
		{name: "duplicate", text: "A Keyword\nA Bool\n", wantErr: "declared twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSearchAttributes(tt.text)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
