package scheduler_test

import (
	"fmt"

	"github.com/thrive-loadtest/thrive/scheduler"
)

// A mix gives each profile its share of the users; weights need not add
// up to 100.
func ExampleParseMix() {
	m, err := scheduler.ParseMix("chat=30, browse=60, import=10")
	if err != nil {
		panic(err)
	}
	fmt.Println(m["browse"], m["chat"], m["import"])
	_, err = scheduler.ParseMix("chat=-1")
	fmt.Println(err != nil)
	// Output:
	// 60 30 10
	// true
}
