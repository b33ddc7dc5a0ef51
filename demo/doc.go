// Package demo is the sample backend that thrive's tests, benchmarks and
// `thrive demo` load, and the driver that plays real users against it.
//
// The backend behaves like the product thrive's first users run: Django-like
// session and CSRF cookies, a project catalogue, an AI chat agent that streams
// tokens over a WebSocket, and slow GitHub and YouTube imports whose results
// only their creator can see. It rate-limits each session, can be made slower
// as a whole (a "slower build") or behave like a changed build (a JSON field
// dropped or renamed, an endpoint that fails or is slower, longer chat
// replies: see WithDropField and the options after it), and injects faults
// on request.
//
// All per-user state lives in signed values the client carries: the session
// cookie, the CSRF token, and the ids of imported projects and jobs are MACs
// under a secret key. That keeps the backend's per-connection cost small and
// lets several processes share one port (SO_REUSEPORT) with the same key,
// whichever process a connection lands on.
//
// The driver plays the three profiles of the team's Locust model (browse,
// chat, import; 60/30/10) with real HTTP and WebSocket clients, one cookie
// jar and one connection pool per session, like browsers.
package demo
