package scheduler

import "math/bits"

// mix64 is SplitMix64's finalizer: a bijection of uint64 that spreads every
// input bit over the output, so that hashes of (seed, user, n) make
// independent uniform draws without any generator state.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// draw returns a uniform number in [0, n) for (seed, a, b), by Lemire's
// multiply-shift (its bias, n/2^64, does not matter here).
func draw(seed, a, b uint64, n int) int {
	h := mix64(seed ^ mix64(a^mix64(b)))
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
}
