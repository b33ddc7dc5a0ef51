// Package replay runs a scheduler's plan against a target: each virtual
// user plays recorded sessions with its own keep-alive connections
// (fasthttp) and WebSockets (gorilla/websocket), at the recorded offsets or
// after the recorded think gaps, and reports every request to a sink with
// its intended and actual send times, so that latency is measured from when
// the request should have gone out (no coordinated omission) and the
// generator's own lateness shows as schedule lag.
package replay
