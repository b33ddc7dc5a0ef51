// Package app is thrive's application layer: the runs its commands make of
// the engines (a Replay, its ladder and check; a Recording; a Tour; the
// merge of shards; Traces, the traces commands that read a trace whole)
// and the one step that finishes a result (Finish). It is the only code,
// with cmd/thrive, that writes to the terminal and that knows the command
// line's flags: the engines (capture, replay, report, traces, demo) return
// data and typed errors, and Hint gives those errors the advice the user
// needs, in the flags' words. A run's progress is a stream of Snapshots,
// which the status line and any other face of the run read.
package app
