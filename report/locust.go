package report

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/thrive-loadtest/thrive/traces"
)

// Locust's CSV files (--csv PREFIX), column for column as Locust 2.x writes
// them, so that spreadsheets and scripts made for Locust read thrive's.

// LocustPercentiles are the percentiles Locust reports, as fractions.
var LocustPercentiles = []float64{0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0} //nolint:gochecknoglobals // constant table

func percentileNames() []string {
	out := make([]string, len(LocustPercentiles))
	for i, p := range LocustPercentiles {
		out[i] = strconv.FormatFloat(100*p, 'f', -1, 64) + "%"
	}
	return out
}

// LocustStatsColumns are the columns of PREFIX_stats.csv.
func LocustStatsColumns() []string {
	return append([]string{"Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
		"Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s"}, percentileNames()...)
}

// LocustHistoryColumns are the columns of PREFIX_stats_history.csv.
func LocustHistoryColumns() []string {
	cols := append([]string{"Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s"}, percentileNames()...)
	return append(cols, "Total Request Count", "Total Failure Count", "Total Median Response Time", "Total Average Response Time",
		"Total Min Response Time", "Total Max Response Time", "Total Average Content Size")
}

// LocustFailuresColumns and LocustExceptionsColumns head the other two.
func LocustFailuresColumns() []string   { return []string{"Method", "Name", "Error", "Occurrences"} }
func LocustExceptionsColumns() []string { return []string{"Count", "Message", "Traceback", "Nodes"} }

// locustRow is an endpoint as Locust counts it: by type and name, all
// profiles together.
type locustRow struct {
	typ, name          string
	requests, failures int64
	hist               *hdrhistogram.Histogram
	errors             map[string]int64
}

// typeAndName splits an endpoint into Locust's Type (the method) and Name.
func typeAndName(e EndpointStats) (string, string) {
	if e.Kind != "http" {
		return e.Kind, traces.SocketPath(e.Name)
	}
	if m, rest, ok := strings.Cut(e.Name, " "); ok {
		return m, rest
	}
	return "", e.Name
}

func locustRows(res *Result) ([]*locustRow, error) {
	byKey := map[[2]string]*locustRow{}
	var rows []*locustRow
	for _, e := range res.Endpoints {
		typ, name := typeAndName(e)
		r := byKey[[2]string{typ, name}]
		if r == nil {
			r = &locustRow{typ: typ, name: name, hist: newHist(), errors: map[string]int64{}}
			byKey[[2]string{typ, name}] = r
			rows = append(rows, r)
		}
		r.requests += e.Requests
		r.failures += e.Failures
		if err := mergeInto(r.hist, e.Hist, e.Name+": latency"); err != nil {
			return nil, err
		}
		for kind, n := range e.Errors {
			r.errors[string(kind)] += n
		}
		e.failingStatuses(func(code string, n int64) { r.errors["HTTP "+code] += n })
	}
	slices.SortFunc(rows, func(a, b *locustRow) int {
		return cmp.Or(strings.Compare(a.name, b.name), strings.Compare(a.typ, b.typ))
	})
	return rows, nil
}

func ms(v int64) string     { return strconv.FormatInt((v+500)/1000, 10) }
func msf(v float64) string  { return strconv.FormatFloat(v/1000, 'f', -1, 64) }
func rate(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// percentileCells returns Locust's percentile cells of h, in ms.
func percentileCells(h *hdrhistogram.Histogram) []string {
	out := make([]string, len(LocustPercentiles))
	for i, p := range LocustPercentiles {
		if h == nil || h.TotalCount() == 0 {
			out[i] = "N/A"
			continue
		}
		out[i] = ms(h.ValueAtQuantile(100 * p))
	}
	return out
}

// WriteLocustCSV writes PREFIX_stats.csv, PREFIX_stats_history.csv,
// PREFIX_failures.csv and PREFIX_exceptions.csv.
func WriteLocustCSV(prefix string, res *Result) error {
	rows, err := locustRows(res)
	if err != nil {
		return err
	}
	secs := max(res.End.Sub(res.Start).Seconds(), 1e-9)
	total := &locustRow{name: "Aggregated", hist: newHist()}
	for _, r := range rows {
		total.requests += r.requests
		total.failures += r.failures
		total.hist.Merge(r.hist)
	}
	stats := [][]string{LocustStatsColumns()}
	for _, r := range append(rows, total) {
		h := r.hist
		row := []string{r.typ, r.name, strconv.FormatInt(r.requests, 10), strconv.FormatInt(r.failures, 10),
			ms(h.ValueAtQuantile(50)), msf(h.Mean()), ms(h.Min()), ms(h.Max()), "0",
			rate(float64(r.requests) / secs), rate(float64(r.failures) / secs)}
		if r.requests == 0 {
			row[4], row[5], row[6], row[7] = "0", "0", "0", "0"
		}
		stats = append(stats, append(row, percentileCells(h)...))
	}
	failures := [][]string{LocustFailuresColumns()}
	for _, r := range rows {
		kinds := make([]string, 0, len(r.errors))
		for k := range r.errors {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			failures = append(failures, []string{r.typ, r.name, k, strconv.FormatInt(r.errors[k], 10)})
		}
	}
	history, err := locustHistory(res)
	if err != nil {
		return err
	}
	return errors.Join(
		writeCSV(prefix+"_stats.csv", stats),
		writeCSV(prefix+"_stats_history.csv", history),
		writeCSV(prefix+"_failures.csv", failures),
		writeCSV(prefix+"_exceptions.csv", [][]string{LocustExceptionsColumns()}),
	)
}

// locustHistory is the Aggregated row of each second, as Locust writes it
// without --csv-full-history.
func locustHistory(res *Result) ([][]string, error) {
	out := [][]string{LocustHistoryColumns()}
	cum := newSecondHist()
	var reqs, fails int64
	for _, s := range res.Series {
		h, err := decodeHist(s.Hist, fmt.Sprintf("second %d: latency", s.Offset))
		if err != nil {
			return nil, err
		}
		cum.Merge(h)
		reqs += s.Requests
		fails += s.Failures
		row := []string{strconv.FormatInt(res.Start.Unix()+s.Offset+1, 10), strconv.FormatInt(s.Users, 10), "", "Aggregated",
			strconv.FormatFloat(float64(s.Requests), 'f', 6, 64), strconv.FormatFloat(float64(s.Failures), 'f', 6, 64)}
		row = append(row, percentileCells(h)...)
		row = append(row, strconv.FormatInt(reqs, 10), strconv.FormatInt(fails, 10),
			ms(cum.ValueAtQuantile(50)), msf(cum.Mean()), ms(cum.Min()), ms(cum.Max()), "0")
		out = append(out, row)
	}
	return out, nil
}

func writeCSV(path string, rows [][]string) error {
	return create(path, func(f io.Writer) error { return csv.NewWriter(f).WriteAll(rows) })
}
