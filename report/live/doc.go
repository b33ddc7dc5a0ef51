// Package live is a run's live face: a Prometheus exporter of the run's
// figures (requests, latency, users, WebSockets, schedule lag, errors),
// read from the recorder when Prometheus asks, never per request.
//
// Every series carries the labels run (the run's start time, shared by
// the shards of one run) and shard (i/n; 0/1 for a run of one process),
// so that Prometheus sums the shards of a distributed run.
package live
