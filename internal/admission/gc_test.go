package admission

import (
	"runtime/debug"
	"testing"
)

func TestSetGCPercent(t *testing.T) {
	original := debug.SetGCPercent(-1)
	debug.SetGCPercent(original)
	t.Cleanup(func() { debug.SetGCPercent(original) })

	debug.SetGCPercent(123)
	t.Setenv("GOGC", "123")
	if got := SetGCPercent(400, false); got != 123 {
		t.Errorf("with GOGC set and no flag, SetGCPercent() = %d, want GOGC's 123", got)
	}
	if got := SetGCPercent(400, true); got != 400 {
		t.Errorf("with GOGC set and the flag given, SetGCPercent() = %d, want the flag's 400", got)
	}

	t.Setenv("GOGC", "")
	if got := SetGCPercent(300, false); got != 300 {
		t.Errorf("without GOGC, SetGCPercent() = %d, want 300", got)
	}
}
