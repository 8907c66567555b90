package harness

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/provisio-dev/provisio/internal/verify"
)

// Injection is one fault (or the end of one), at a moment since the
// faults' clock started (after setup).
type Injection struct {
	At   time.Duration `json:"at"`
	What string        `json:"what"`
}

// Report is what a run injected, how its runs ended and the final
// comparison.
type Report struct {
	Seed     uint64   `json:"seed"`
	Scenario Scenario `json:"scenario"`
	// Dir is the work directory with every instance's log; Kept says it
	// was left on disk.
	Dir  string `json:"dir"`
	Kept bool   `json:"kept"`
	// Setup and Elapsed are the set-up time and the whole run's.
	Setup   time.Duration `json:"setup"`
	Elapsed time.Duration `json:"elapsed"`

	Injected     []Injection `json:"injected"`
	WorkerStarts int         `json:"workerStarts"`
	Outages      []Outage    `json:"outages,omitempty"`
	// Compensated is the ledger's story of each doomed hire.
	Compensated []Compensation `json:"compensated,omitempty"`
	// Runs counts the runs the events started by kind and outcome.
	Runs map[string]int `json:"runs,omitempty"`

	Summary     []verify.Summary    `json:"summary,omitempty"`
	Differences []verify.Difference `json:"differences,omitempty"`
	// Problems are failures besides account differences: a run that did
	// not end as it should, a flag not raised, an event refused.
	Problems []string `json:"problems,omitempty"`
}

// OK reports whether the run found nothing wrong.
func (r *Report) OK() bool { return len(r.Differences) == 0 && len(r.Problems) == 0 }

// summaryKinds are the comparison's columns, in order.
var summaryKinds = []verify.Kind{
	verify.KindMissing, verify.KindExtra, verify.KindDuplicate,
	verify.KindMissingEntitlement, verify.KindExtraEntitlement, verify.KindState, verify.KindUsername, verify.KindLedger,
}

// Print writes the report for people: the faults injected, how the runs
// ended, the comparison per application, and every difference and
// problem.
func (r *Report) Print(w io.Writer) {
	sc := r.Scenario
	fmt.Fprintf(w, "\n== Fault test: %d hires, %d moves, %d leavers, %d doomed hires (seed %d) ==\n",
		sc.Hires, sc.Moves, sc.Leavers, sc.Doomed, r.Seed)
	fmt.Fprintf(w, "set-up %s, whole run %s; work dir %s", r.Setup.Round(time.Second), r.Elapsed.Round(time.Second), r.Dir)
	if r.Kept {
		fmt.Fprint(w, " (kept)")
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "\nInjected:")
	for _, in := range r.Injected {
		fmt.Fprintf(w, "  +%6.1fs  %s\n", in.At.Seconds(), in.What)
	}
	fmt.Fprintf(w, "  worker processes started: %d\n", r.WorkerStarts)
	for _, o := range r.Outages {
		fmt.Fprintf(w, "  %s down %s: %d offboardings started meanwhile, %d flagged NeedsAttention while it was down\n",
			o.Service, o.Down, len(o.Terminated), len(o.Flagged))
	}
	for _, c := range r.Compensated {
		fmt.Fprintf(w, "  partial failure %s: accounts created in %s, removed by compensation in %s\n",
			c.EmployeeID, orNone(c.Created), orNone(c.Removed))
	}

	if len(r.Runs) > 0 {
		fmt.Fprintln(w, "\nRuns:")
		for _, k := range slices.Sorted(maps.Keys(r.Runs)) {
			fmt.Fprintf(w, "  %-48s %5d\n", k, r.Runs[k])
		}
	}

	if len(r.Summary) > 0 {
		fmt.Fprintln(w, "\nFinal comparison (applications listed through the connectors, against policy and the HR events; ledger against applications):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := []string{"application", "expected", "held"}
		for _, k := range summaryKinds {
			head = append(head, string(k))
		}
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		total := 0
		for _, s := range r.Summary {
			row := []string{s.Application, fmt.Sprint(s.Expected), fmt.Sprint(s.Held)}
			for _, k := range summaryKinds {
				row = append(row, fmt.Sprint(s.ByKind[k]))
			}
			total += s.Total()
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "differences: %d\n", total)
	}
	const show = 50
	for i, d := range r.Differences {
		if i == show {
			fmt.Fprintf(w, "  ... and %d more\n", len(r.Differences)-show)
			break
		}
		fmt.Fprintf(w, "  DIFFERENCE %s\n", d)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  PROBLEM %s\n", p)
	}
	if r.OK() {
		fmt.Fprintln(w, "\nPASS: zero missing, zero extra, zero duplicate accounts; the ledger agrees; every run finished")
	} else {
		fmt.Fprintf(w, "\nFAIL: %d differences, %d problems\n", len(r.Differences), len(r.Problems))
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
