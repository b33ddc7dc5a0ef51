// Package report turns what a replay measured into answers: latency
// histograms per endpoint and profile, the result file, its renderers,
// thresholds, comparison and merging. It imports nothing else of thrive's.
package report
