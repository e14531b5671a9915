package tui

import (
	"context"
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/anonlab/anonlab/internal/budget"
)

// firstFrameBudget is docs/architecture.md's budget for the first TUI frame.
const firstFrameBudget = 100 * time.Millisecond

// BenchmarkFirstFrame is the walkthrough's first full frame: the model
// built, sized, told the scenario (the engine's first event), and drawn
// with the first step's explanation rendered. It fails over its budget.
func BenchmarkFirstFrame(b *testing.B) {
	ctl := Start(context.Background(), article(b), newBackend())
	defer ctl.Close()
	started := <-ctl.Events()
	for b.Loop() {
		var m tea.Model = NewWalkthrough(ctl)
		m, _ = m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
		m, _ = m.Update(started)
		if m.View().Content == "" {
			b.Fatal("empty frame")
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/frame")
	budget.Check(b, "TUI: first frame", float64(per.Microseconds())/1000, float64(firstFrameBudget.Milliseconds()), " ms",
		fmt.Sprintf("mean of %d frames, 160×50", b.N))
}
