package report

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestLocustCSV(t *testing.T) {
	// The columns of Locust 2.12's CSV files, as its stats.py writes them.
	wantStatsCols := []string{"Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time", "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s", "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"}
	wantHistoryCols := []string{"Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%", "Total Request Count", "Total Failure Count", "Total Median Response Time", "Total Average Response Time", "Total Min Response Time", "Total Max Response Time", "Total Average Content Size"}
	wantFailsCols := []string{"Method", "Name", "Error", "Occurrences"}
	wantExceptCols := []string{"Count", "Message", "Traceback", "Nodes"}
	prefix := filepath.Join(t.TempDir(), "run")
	if err := WriteLocustCSV(prefix, knownResult()); err != nil {
		t.Fatal(err)
	}
	stats := readCSV(t, prefix+"_stats.csv")
	if !slices.Equal(stats[0], wantStatsCols) {
		t.Fatalf("stats columns %q", stats[0])
	}
	// GET /a, GET /b, then Aggregated, as Locust orders them.
	if len(stats) != 4 || stats[1][0] != "GET" || stats[1][1] != "/a" || stats[3][1] != "Aggregated" {
		t.Fatalf("stats rows %q", stats)
	}
	a := stats[1]
	if a[2] != "1000" || a[3] != "10" || a[4] != "500" || a[7] != "1000" || a[11] != "500" || a[21] != "1000" {
		t.Fatalf("GET /a row %q", a)
	}
	if b := stats[2]; b[2] != "10" || b[3] != "0" { // 429s are not failures
		t.Fatalf("GET /b row %q", b)
	}
	hist := readCSV(t, prefix+"_stats_history.csv")
	if !slices.Equal(hist[0], wantHistoryCols) || len(hist) < 2 || hist[len(hist)-1][17] != "1010" {
		t.Fatalf("history %q", hist)
	}
	fails := readCSV(t, prefix+"_failures.csv")
	if !slices.Equal(fails[0], wantFailsCols) || len(fails) != 2 || fails[1][2] != "HTTP 503" || fails[1][3] != "10" {
		t.Fatalf("failures %q", fails)
	}
	if ex := readCSV(t, prefix+"_exceptions.csv"); !slices.Equal(ex[0], wantExceptCols) || len(ex) != 1 {
		t.Fatalf("exceptions %q", ex)
	}
}

// TestFailingStatusesAsSamplesFail: the statuses listed as failures are
// those Sample.Failed fails: a socket's handshake answered 429 is a
// refusal to wait for, not a failure (it was listed as one).
func TestFailingStatusesAsSamplesFail(t *testing.T) {
	for _, tc := range []struct {
		kind string
		code int
	}{{"http", 200}, {"http", 404}, {"http", 429}, {"http", 500}, {"ws-connect", 101}, {"ws-connect", 200}, {"ws-connect", 429}, {"ws-connect", 503}} {
		e := &EndpointStats{Kind: tc.kind, StatusCodes: map[string]int64{strconv.Itoa(tc.code): 1}}
		listed := false
		e.failingStatuses(func(string, int64) { listed = true })
		kind := HTTP
		if tc.kind == "ws-connect" {
			kind = WSConnect
		}
		if failed := (&Sample{Kind: kind, Status: tc.code}).Failed(); listed != failed {
			t.Errorf("%s %d: listed as a failure %v, the sample failed %v", tc.kind, tc.code, listed, failed)
		}
	}
}
