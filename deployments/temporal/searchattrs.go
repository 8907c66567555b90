package main

import (
	"bufio"
	_ "embed"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
)

// searchAttributesFile lists provisio's custom search attributes. It is embedded so the binary
// needs no file next to it, and the main module's tests read the same file to check that the
// keys the workflows declare match what the server registers.
//
//go:embed search_attributes.txt
var searchAttributesFile string

// parseSearchAttributes reads "Name Type" lines; blank lines and text after '#' are ignored.
// Type is a Temporal indexed value type such as Keyword, KeywordList or Bool.
func parseSearchAttributes(text string) (map[string]enumspb.IndexedValueType, error) {
	attrs := make(map[string]enumspb.IndexedValueType)
	sc := bufio.NewScanner(strings.NewReader(text))
	for lineNo := 1; sc.Scan(); lineNo++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("search attributes line %d: want \"Name Type\", got %q", lineNo, sc.Text())
		}
		name, typeName := fields[0], fields[1]
		t, err := enumspb.IndexedValueTypeFromString(typeName)
		if err != nil || t == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return nil, fmt.Errorf("search attributes line %d: unknown type %q for %s", lineNo, typeName, name)
		}
		if _, dup := attrs[name]; dup {
			return nil, fmt.Errorf("search attributes line %d: %s is declared twice", lineNo, name)
		}
		attrs[name] = t
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading search attributes: %w", err)
	}
	return attrs, nil
}
