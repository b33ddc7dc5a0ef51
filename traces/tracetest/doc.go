// Package tracetest reads traces for tests, failing the test on any error.
// Only tests import it (it imports testing); synthetic traces come from
// traces/synth.
package tracetest
