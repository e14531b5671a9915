package tui

import (
	"context"
	"testing"

	tea "charm.land/bubbletea/v2"
)

// BenchmarkFirstFrame is the walkthrough's first full frame: the model
// built, sized, told the scenario (the engine's first event), and drawn
// with the first step's explanation rendered. docs/architecture.md's budget: 150 ms.
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
}
