package replay

// FromSessions makes a Library of sessions already in memory, for the
// tests: a program reads its sessions from a trace (Load).
var FromSessions = fromSessions //nolint:gochecknoglobals // exported for the tests only
