package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxDays bounds the day count so days*24h cannot overflow time.Duration
// (which holds about 106751 days).
const maxDays = 100000

// ParseDuration reads a policy duration: anything time.ParseDuration reads
// ("72h", "90m"), or whole days with an optional Go duration after them
// ("3d", "1d12h"). Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	if i := strings.IndexByte(s, 'd'); i > 0 && allDigits(s[:i]) {
		days, err := strconv.Atoi(s[:i])
		if err != nil || days > maxDays {
			return 0, fmt.Errorf("duration %q: too many days", s)
		}
		d := time.Duration(days) * Day
		if rest := s[i+1:]; rest != "" {
			if strings.HasPrefix(rest, "+") || strings.HasPrefix(rest, "-") {
				return 0, fmt.Errorf("duration %q: unexpected %q after the days", s, rest[:1])
			}
			r, err := time.ParseDuration(rest)
			if err != nil {
				return 0, fmt.Errorf("duration %q: want days then a Go duration, e.g. 1d12h", s)
			}
			d += r
		}
		return d, nil
	}
	if s == "0" {
		return 0, nil
	}
	if allDigits(s) {
		return 0, fmt.Errorf("duration %q has no unit; write e.g. %sd or %sh", s, s, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 72h, 30m or 3d", s)
	}
	return d, nil
}

// FormatDuration writes d the way policy files do: "3d", "1d12h", "90m".
// ParseDuration reads it back to the same value.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	days := d / Day
	rest := d % Day
	var b strings.Builder
	if days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		if rest == 0 {
			return b.String()
		}
	}
	s := rest.String()
	// time.Duration.String pads with zero units ("12h0m0s"); drop them.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	b.WriteString(s)
	return b.String()
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
