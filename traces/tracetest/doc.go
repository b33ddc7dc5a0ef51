// Package tracetest makes realistic synthetic traces for tests and
// benchmarks: browse, chat and import sessions against an API like the demo
// backend's, with JSON bodies of 0.2–20 KB, browser-like headers and
// WebSocket chat frames. It also renders sessions as the raw HTTP/1.1 bytes
// they stand for, which is what trace sizes are measured against.
package tracetest
