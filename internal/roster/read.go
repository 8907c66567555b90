package roster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/provisio-dev/provisio/internal/hr"
)

// MaxExportBytes bounds an HR export. The sample roster of 300 people is
// 40 KiB; 64 MiB holds several hundred thousand rows, and anything larger
// is a broken or hostile feed that must not be read into memory.
const MaxExportBytes = 64 << 20

// ErrTooLarge means the export exceeds MaxExportBytes and is rejected whole.
var ErrTooLarge = errors.New("HR export too large")

// Export is a parsed HR export: the good rows and the rejected ones.
type Export struct {
	Rows     []hr.Row
	Rejected []Rejection
}

// Rejection is a row that is not applied, with its line and why. Its JSON
// fields are stable (`starter sync --output json`).
type Rejection struct {
	// Line is the 1-based line the row starts on.
	Line int `json:"line"`
	// EmployeeID is the row's ID when it could be read, else empty.
	EmployeeID string `json:"employeeId,omitempty"`
	Reason     string `json:"reason"`
}

// Read reads a whole export of at most MaxExportBytes. A file that is too
// large, not UTF-8 or without the roster header is rejected whole
// (ErrTooLarge, hr.ErrNotRoster, wrapped); otherwise each bad row becomes a
// Rejection and the others are returned.
func Read(r io.Reader) (Export, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxExportBytes+1))
	if err != nil {
		return Export{}, fmt.Errorf("read HR export: %w", err)
	}
	if len(data) > MaxExportBytes {
		return Export{}, fmt.Errorf("%w: more than %d MiB", ErrTooLarge, MaxExportBytes>>20)
	}
	// The whole file, not only the fields: a stray invalid byte anywhere
	// means a wrong export encoding (Latin-1, UTF-16), never one bad row.
	if !utf8.Valid(data) {
		return Export{}, fmt.Errorf("%w: not UTF-8 (export the roster as UTF-8 CSV)", hr.ErrNotRoster)
	}
	rows, bad, err := hr.ReadRoster(bytes.NewReader(data))
	if err != nil {
		return Export{}, err
	}
	ex := Export{Rows: rows}
	for _, b := range bad {
		ex.Rejected = append(ex.Rejected, Rejection{
			Line: b.Line, EmployeeID: idAtLine(data, b.Line), Reason: oneLine(b.Err.Error()),
		})
	}
	return ex, nil
}

// idAtLine returns the employee ID at the start of the given 1-based line,
// or "" when it is not a valid one. Rejected rows keep their person out of
// the leavers (a typo in a row must never offboard someone), so the sync
// needs their ID even when the row did not parse.
func idAtLine(data []byte, line int) string {
	for i := 1; i < line; i++ {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return ""
		}
		data = data[nl+1:]
	}
	if nl := bytes.IndexByte(data, '\n'); nl >= 0 {
		data = data[:nl]
	}
	field := data
	if len(field) > 0 && field[0] == '"' {
		end := bytes.IndexByte(field[1:], '"')
		if end < 0 {
			return ""
		}
		field = field[1 : 1+end]
	} else if c := bytes.IndexByte(field, ','); c >= 0 {
		field = field[:c]
	}
	id := string(bytes.TrimSpace(field))
	if !hr.ValidEmployeeID(id) {
		return ""
	}
	return id
}

// oneLine joins a multi-line error (errors.Join of field errors) with "; "
// so each rejection prints on one line.
func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", "; ")
}
