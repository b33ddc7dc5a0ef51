// Package capture records real traffic into traces: a reverse proxy that
// relays HTTP/1.1 and WebSockets to a backend and records every exchange and
// frame, a sessionizer that groups exchanges into client visits, profile
// rules that label each visit, and redaction of credentials.
//
// Recording never delays a proxied request: the proxy hands finished
// exchanges to the sessionizer under a short lock, and sessions that end go
// through a bounded queue to one writer goroutine, which redacts, encodes and
// writes them. What the queue cannot take is dropped and counted.
package capture
