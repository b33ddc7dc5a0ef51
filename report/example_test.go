package report_test

import (
	"fmt"

	"github.com/thrive-loadtest/thrive/report"
)

// A criterion is [SCOPE:]METRIC OP VALUE; latencies are kept in
// milliseconds and rates as fractions.
func ExampleParseCriterion() {
	for _, text := range []string{"p95<1s", "error_rate<1%", "GET /api/projects/{id}/:p99<=500ms"} {
		c, err := report.ParseCriterion(text)
		if err != nil {
			panic(err)
		}
		fmt.Printf("scope %q, %s %s %g\n", c.Scope, c.Metric, c.Op, c.Value)
	}
	// Output:
	// scope "", p95 < 1000
	// scope "", error_rate < 0.01
	// scope "GET /api/projects/{id}/", p99 <= 500
}
