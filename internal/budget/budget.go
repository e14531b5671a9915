// Package budget is how benchmarks report docs/architecture.md's budgets:
// one line each that `make bench` (hack/bench.sh) collects into its
// summary, and a failed benchmark when the measured value is over.
package budget

import (
	"testing"
)

// Prefix starts every budget line; hack/bench.sh looks for it.
const Prefix = "BUDGET"

// Check logs name's measured value against its budget (both in unit) with
// where the time went, and fails b when the value is over the budget.
func Check(b testing.TB, name string, measured, limit float64, unit, detail string) {
	b.Helper()
	verdict := "ok"
	if measured > limit {
		verdict = "OVER"
	}
	b.Logf("%s\t%s\t%.3g%s\t≤ %.4g%s\t%s\t%s", Prefix, name, measured, unit, limit, unit, verdict, detail)
	if verdict != "ok" {
		b.Errorf("%s: %.3g%s, over its budget of %.4g%s (%s)", name, measured, unit, limit, unit, detail)
	}
}
