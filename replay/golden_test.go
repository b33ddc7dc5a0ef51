package replay_test

import (
	"bytes"
	"testing"

	"github.com/thrive-loadtest/thrive/internal/golden"
	"github.com/thrive-loadtest/thrive/replay"
)

// TestGoldenCheckReport holds the text of --check to its layout: a
// regression of its own with its cause and fix, one that follows an
// earlier failure, a divergence that is no regression, and the
// correlation rules with values found and missing (each that missed
// named), and the requests that got no answer.
func TestGoldenCheckReport(t *testing.T) {
	rep := &replay.CheckReport{Sessions: 3, Requests: 41, Regressions: 5, TransportErrors: 1,
		Divergences: []replay.Divergence{
			{Endpoint: "POST /accounts/login/", Kind: "status", What: "status 200 where 302 was recorded", Count: 1, Of: 3, Regression: true,
				Cause: "the login was refused with the users file's values (user 3)", Fix: "check users.csv's password for user 3"},
			{Endpoint: "GET /projects/{id}/", Kind: "status", What: "redirect: login", Count: 4, Of: 9, Regression: true,
				After: "POST /accounts/login/", Cause: "an earlier request of the session failed first: POST /accounts/login/"},
			{Endpoint: "GET /api/items", Kind: "shape", What: "JSON field $.items[].owner missing", Count: 2, Of: 12},
		},
		Correlations: []replay.CorrelationStat{
			{Rule: "GET /accounts/login/ form POST /accounts/login/ #1 csrfmiddlewaretoken", Found: 3},
			{Rule: "POST /api/jobs $.job.id", Found: 5, Missing: 1},
		},
	}
	var b bytes.Buffer
	rep.WriteText(&b, "http://127.0.0.1:8000")
	golden.Check(t, "./replay", b.Bytes())
}
