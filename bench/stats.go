package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// latencies summarises a set of durations.
type latencies struct {
	P50, P95, P99, Max time.Duration
	N                  int
}

func summarise(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pct := func(p float64) time.Duration {
		// Nearest-rank percentile: the smallest value with at least p of
		// the samples at or below it.
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return latencies{P50: pct(0.50), P95: pct(0.95), P99: pct(0.99), Max: s[len(s)-1], N: len(s)}
}

// Figure is one row of the results: a measured value, the floor it is
// compared with, and their ratio.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Floor is the same figure for the no-op floor (0 when none applies).
	Floor float64 `json:"floor,omitempty"`
	// Ratio is Value/Floor (0 when no floor applies).
	Ratio float64 `json:"ratio,omitempty"`
	// Target says what the figure aims for, in words.
	Target string `json:"target,omitempty"`
	// Met reports whether the target is met (absent when none).
	Met *bool `json:"met,omitempty"`
	// Note explains a missed target or how the figure was taken.
	Note string `json:"note,omitempty"`
}

func figure(name string, value float64, unit string, floor float64) Figure {
	f := Figure{Name: name, Value: round(value), Unit: unit, Floor: round(floor)}
	if floor > 0 {
		f.Ratio = round(value / floor)
	}
	return f
}

func (f Figure) target(text string, met bool) Figure {
	f.Target, f.Met = text, &met
	return f
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printTable(w io.Writer, figs []Figure) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tVALUE\tFLOOR\tRATIO\tTARGET")
	for _, f := range figs {
		floor, ratio := "-", "-"
		if f.Floor > 0 {
			floor = fmt.Sprintf("%g %s", f.Floor, f.Unit)
			ratio = fmt.Sprintf("%.2fx", f.Ratio)
		}
		target := "-"
		if f.Met != nil {
			mark := "met"
			if !*f.Met {
				mark = "MISSED"
			}
			target = f.Target + " (" + mark + ")"
		}
		fmt.Fprintf(tw, "%s\t%g %s\t%s\t%s\t%s\n", f.Name, f.Value, f.Unit, floor, ratio, target)
	}
	_ = tw.Flush()
}
