// Package live is a run's live face: a Prometheus exporter of the run's
// figures (requests, latency, users, WebSockets, schedule lag, errors),
// read from the recorder when Prometheus asks, and a web page of the run
// (Web), fed a frame of its figures once a second; neither does any work
// per request.
//
// Every series carries the labels run (the run's start time, shared by
// the shards of one run) and shard (i/n; 0/1 for a run of one process),
// so that Prometheus sums the shards of a distributed run.
//
// The page and its script are embedded (web/): it loads nothing from the
// network, and draws its charts as SVG.
package live
