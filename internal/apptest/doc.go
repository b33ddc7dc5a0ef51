// Package apptest holds small backends in the styles of applications this
// project did not write (auto-increment ids, bearer tokens, form tokens,
// streams of any length, statuses that were errors when recorded), each
// counting what it saw from its own side, and a harness that records
// clients through the real capture. Only tests import it.
package apptest
