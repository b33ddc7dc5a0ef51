// Package synth makes realistic synthetic traces, for `thrive traces
// sample`, tests and benchmarks: browse, chat and import sessions against an
// API like the demo backend's, with JSON bodies of 0.2–20 KB, browser-like
// headers and WebSocket chat frames. It also renders sessions as the raw
// HTTP/1.1 bytes they stand for, which is what trace sizes are measured
// against. Unlike traces/tracetest, it does not import testing, so the
// binary may link it.
package synth
