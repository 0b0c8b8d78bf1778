package benchmark

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCPU prints wall and CPU ms per run for the workloads in $WL.
func TestCPU(t *testing.T) {
	names := strings.Fields(os.Getenv("WL"))
	if len(names) == 0 {
		t.Skip()
	}
	n := 30
	if v, err := strconv.Atoi(os.Getenv("N")); err == nil {
		n = v
	}
	ws, err := Select(names)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		run, _ := w.Setup()
		run()
		run()
		var walls []float64
		c0 := cpuNow()
		for range n {
			t0 := time.Now()
			run()
			walls = append(walls, float64(time.Since(t0).Microseconds())/1000)
		}
		cpu := float64((cpuNow() - c0).Microseconds()) / 1000 / float64(n)
		sort.Float64s(walls)
		fmt.Printf("%-12s wall min %7.3f med %7.3f ms   cpu %7.3f ms/run\n", w.Name, walls[0], walls[n/2], cpu)
	}
}
