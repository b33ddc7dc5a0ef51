package main

import (
	"strconv"

	"github.com/spf13/pflag"
	"github.com/thrive-loadtest/thrive/traces"
)

// optionFlag declares a flag of no value that adds opt to *opts when it is
// given (and true).
func optionFlag[O any](fl *pflag.FlagSet, opts *[]O, name, usage string, opt O) {
	fl.BoolFunc(name, usage, func(v string) error {
		on, err := strconv.ParseBool(v)
		if on {
			*opts = append(*opts, opt)
		}
		return err
	})
}

// parsedFlag declares a flag whose every value parse makes into an option
// added to *opts; parse's error is the flag's.
func parsedFlag[O any](fl *pflag.FlagSet, opts *[]O, name, usage string, parse func(string) (O, error)) {
	fl.Func(name, usage, func(v string) error {
		o, err := parse(v)
		if err == nil {
			*opts = append(*opts, o)
		}
		return err
	})
}

// sizeFlag declares a flag of a size in bytes (traces.ParseBytes: 1MiB,
// 100MB).
func sizeFlag(fl *pflag.FlagSet, n *int64, name, value, usage string) {
	*n, _ = traces.ParseBytes(value)
	fl.Func(name, usage+" (default "+value+")", func(s string) (err error) {
		*n, err = traces.ParseBytes(s)
		return err
	})
}
