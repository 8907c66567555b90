package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"

	"github.com/provisio-dev/provisio/internal/hr"
)

// celPerson is what a rule condition sees as `person`. Declaring it as a
// typed object (not a map) is what makes a misspelt field such as
// person.departmnet a check error at load time rather than a rule that
// silently never matches.
type celPerson struct {
	EmployeeID     string            `cel:"employee_id"`
	Department     string            `cel:"department"`
	Title          string            `cel:"title"`
	Location       string            `cel:"location"`
	EmploymentType string            `cel:"employment_type"`
	ManagerID      string            `cel:"manager_id"`
	Status         string            `cel:"status"`
	StartDate      string            `cel:"start_date"`
	EndDate        string            `cel:"end_date"`
	Attributes     map[string]string `cel:"attributes"`
}

// personFields lists the fields of person, for error messages.
const personFields = "employee_id, department, title, location, employment_type, manager_id, status, start_date, end_date, attributes"

// celPersonType is the CEL type name of person.
const celPersonType = "provisio.Person"

// evalCostLimit bounds one condition's evaluation. Conditions over one
// person are tiny; this only stops a pathological comprehension.
const evalCostLimit = 100000

func toCELPerson(p hr.Person) celPerson {
	attrs := make(map[string]string, len(p.Attributes))
	maps.Copy(attrs, p.Attributes)
	return celPerson{
		EmployeeID:     p.EmployeeID,
		Department:     p.Department,
		Title:          p.Title,
		Location:       p.Location,
		EmploymentType: p.EmploymentType,
		ManagerID:      p.ManagerID,
		Status:         p.Status,
		StartDate:      p.StartDate.String(),
		EndDate:        p.EndDate.String(),
		Attributes:     attrs,
	}
}

func newCELEnv() (*cel.Env, error) {
	env, err := cel.NewEnv(
		ext.NativeTypes(types.NativeTypeFor[celPerson](
			types.NativeTypeAlias(celPersonType), types.ParseStructTags(true))),
		cel.Variable("person", cel.ObjectType(celPersonType)),
		cel.OptionalTypes(),
		ext.Strings(),
		cel.ParserExpressionSizeLimit(maxExpressionLen),
	)
	if err != nil {
		return nil, fmt.Errorf("build expression environment: %w", err)
	}
	return env, nil
}

// celProblem is one compile error of a condition, at a position inside the
// expression (1-based line, 0-based column as CEL reports them).
type celProblem struct {
	line, col int
	msg, fix  string
}

// compileCondition compiles src into a program returning bool.
func compileCondition(env *cel.Env, src string) (cel.Program, []celProblem) {
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		var out []celProblem
		for _, e := range iss.Errors() {
			out = append(out, celProblem{
				line: e.Location.Line(), col: e.Location.Column(),
				msg: "condition does not compile: " + e.Message, fix: celFix(e.Message),
			})
		}
		return nil, out
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, []celProblem{{line: 1, msg: fmt.Sprintf("condition must be true or false, but it gives %s", ast.OutputType()),
			fix: `compare a field, e.g. person.department == "Sales"`}}
	}
	prg, err := env.Program(ast, cel.CostLimit(evalCostLimit))
	if err != nil {
		return nil, []celProblem{{line: 1, msg: "condition cannot be prepared: " + err.Error(), fix: "simplify the condition"}}
	}
	return prg, nil
}

func celFix(msg string) string {
	switch {
	case strings.Contains(msg, "undefined field"):
		name := between(msg, "'", "'")
		fix := "person has the fields " + personFields + `; extra HR attributes are read with person.attributes["name"]`
		if s := suggest(name, strings.Split(personFields, ", ")); s != "" {
			fix = fmt.Sprintf("did you mean person.%s? %s", s, fix)
		}
		return fix
	case strings.Contains(msg, "undeclared reference"):
		return `the only variable is person; put text in quotes, e.g. person.location == "Berlin"`
	case strings.Contains(msg, "no matching overload"):
		return `compare values of the same type; every person field is a string, e.g. person.start_date >= "2026-01-01"`
	case strings.Contains(msg, "Syntax error"):
		return "fix the expression syntax (CEL: ==, !=, &&, ||, !, in, startsWith(), contains())"
	}
	return "see the CEL language definition: https://github.com/google/cel-spec/blob/master/doc/langdef.md"
}

func between(s, open, closing string) string {
	_, after, ok := strings.Cut(s, open)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, closing)
	return v
}

// suggest returns the candidate closest to s if it is close enough to be a
// likely typo (about one edit per three letters).
func suggest(s string, candidates []string) string {
	if s == "" {
		return ""
	}
	best, bestD := "", len(s)/3+1
	sorted := slices.Clone(candidates)
	slices.Sort(sorted)
	for _, c := range sorted {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours ("titel") cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return max(len(ra), len(rb))
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
