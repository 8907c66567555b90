package main

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSummarise(t *testing.T) {
	for _, tc := range []struct {
		name          string
		in            []time.Duration
		p50, p99, max time.Duration
	}{
		{"empty", nil, 0, 0, 0},
		{"one", []time.Duration{7}, 7, 7, 7},
		// Nearest rank: p50 of 1..100 is the 50th value, p99 the 99th.
		{"hundred", seq(100), 50, 99, 100},
		{"unsorted", []time.Duration{30, 10, 20}, 20, 30, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := summarise(tc.in)
			assert.Equal(t, tc.p50, l.P50)
			assert.Equal(t, tc.p99, l.P99)
			assert.Equal(t, tc.max, l.Max)
			assert.Equal(t, len(tc.in), l.N)
		})
	}
}

func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(n - i) // descending: summarise must sort
	}
	return out
}

func TestFigureRatioAndTarget(t *testing.T) {
	f := figure("kill switch p99", 300, "ms", 100).target("<= 2x floor p99", false)
	assert.Equal(t, 3.0, f.Ratio)
	require.NotNil(t, f.Met)
	assert.False(t, *f.Met)
	assert.Zero(t, figure("listing", 4, "s", 0).Ratio, "no floor, no ratio")
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, options{joiners: 2000, leavers: 200, accounts: 100000, floorN: 2000, out: "bench/results/latest.json"}, o)
	for _, args := range [][]string{
		{"--joiners", "0"},
		{"--joiners", "100", "--leavers", "60"}, // two phases need 120 leavers
		{"--accounts", "-1"},
	} {
		_, err := parseOptions(args, io.Discard)
		assert.Error(t, err, "%v", args)
	}
}
