// Package prom asks a Prometheus server about the backend's own metrics
// over its HTTP API (query and query_range), and judges by them a run's
// criteria on those metrics: the prom: criteria of package report, such
// as prom:histogram_quantile(0.95, sum by (le)
// (rate(http_request_duration_seconds_bucket[1m]))) < 0.1.
//
// A query is evaluated at steps over the run's time range; the criterion
// holds when it holds at every step (and for every series the query
// returns), or, for prom:avg: and prom:max:, when the average or the
// largest of those values does. A query that fails, returns nothing, or
// returns only NaN (a rate of nothing divided by nothing) is an error,
// never a pass.
package prom
