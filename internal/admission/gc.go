package admission

import (
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the manager's garbage collection target, as GOGC. An
// admission review of a Deployment against 150 policies allocates about
// 1.1 MB, so with Go's default of 100 a collection starts every few reviews
// and the reviews that overlap it take about twice as long. At 800
// collections are an eighth as frequent, and the heap may grow to nine
// times its live size between them. A GOMEMLIMIT below the container's
// memory limit makes the collector run before that growth reaches it.
const DefaultGCPercent = 800

// SetGCPercent applies percent as the garbage collection target when
// explicit is true or the GOGC environment variable is unset, and returns
// the target in effect.
func SetGCPercent(percent int, explicit bool) int {
	if explicit || os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
	current := debug.SetGCPercent(-1)
	debug.SetGCPercent(current)
	return current
}
