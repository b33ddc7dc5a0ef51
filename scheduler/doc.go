// Package scheduler turns recorded sessions and the run's parameters into a
// plan: which virtual users exist, which profile each plays, when each is
// active, and which recorded session each plays next. It is pure arithmetic:
// no goroutines, no clock, no I/O. The same sessions, configuration and seed
// give the same plan, and shard i of n holds exactly the users of the whole
// plan whose index is i modulo n.
package scheduler
