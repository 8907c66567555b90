package workflows

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The launcher registers search attributes from its own file (it is a
// separate module); this keeps that file and the keys declared here in step.
func TestSearchAttributesMatchTheLaunchersRegistration(t *testing.T) {
	f, err := os.Open("../deployments/temporal/search_attributes.txt")
	require.NoError(t, err)
	defer f.Close()
	registered := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		require.Len(t, fields, 2, "line %q", line)
		registered[fields[0]] = strings.ToUpper(fields[1])
	}
	require.NoError(t, sc.Err())

	declared := map[string]string{}
	for _, k := range SearchAttributes() {
		declared[k.GetName()] = strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(k.GetValueType().String(), "INDEXED_VALUE_TYPE_"), "_", ""))
	}
	require.Equal(t, registered, declared)
}
