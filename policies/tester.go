package policies

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test (a rule named test_*).
type TestResult struct {
	Name string
	File string
	Line int
	Pass bool
	// Error is set when the test could not run.
	Error string
}

// RunTests runs the Rego unit tests of a policy source (its *_test.rego
// files, with its quotas.yml as data) with OPA's tester, and returns each
// result and the coverage of the policies in percent.
func RunTests(ctx context.Context, fsys fs.FS) ([]TestResult, float64, error) {
	modules, data, err := read(fsys, true)
	if err != nil {
		return nil, 0, err
	}
	cov := cover.New()
	store := inmem.NewFromObject(data)
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("policy tests: %w", err)
	}
	defer store.Abort(ctx, txn)
	ch, err := tester.NewRunner().SetStore(store).SetModules(modules).SetCoverageQueryTracer(cov).RunTests(ctx, txn)
	if err != nil {
		return nil, 0, loadError(err)
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{Name: r.Package + "." + r.Name, Pass: r.Pass()}
		if r.Location != nil {
			tr.File, tr.Line = r.Location.File, r.Location.Row
		}
		if r.Error != nil {
			tr.Error = r.Error.Error()
		}
		out = append(out, tr)
	}
	report := cov.Report(modules)
	if len(out) == 0 {
		return nil, report.Coverage, fmt.Errorf("no Rego tests (rules named test_* in *_test.rego files)")
	}
	return out, report.Coverage, nil
}
