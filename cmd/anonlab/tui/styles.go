package tui

import "charm.land/lipgloss/v2"

// styles use the terminal's 16 ANSI colours, so they follow its light or
// dark theme. Bubble Tea drops the colours under NO_COLOR (or on a
// terminal without them); nothing is told by colour alone: every status
// has its symbol, every highlighted line its marker.
type styles struct {
	app, title, dim, label, rule                 lipgloss.Style
	selected, command, highlight, errText        lipgloss.Style
	passed, failed, running, skipped, pending    lipgloss.Style
	anonOn, anonOff, anonPartial, clusterMissing lipgloss.Style
}

func newStyles() styles {
	s := lipgloss.NewStyle
	return styles{
		app:            s().Bold(true).Foreground(lipgloss.BrightMagenta),
		title:          s().Bold(true),
		dim:            s().Foreground(lipgloss.BrightBlack),
		label:          s().Bold(true).Foreground(lipgloss.BrightBlue),
		rule:           s().Foreground(lipgloss.BrightBlack),
		selected:       s().Bold(true),
		command:        s().Foreground(lipgloss.Cyan),
		highlight:      s().Bold(true).Foreground(lipgloss.Yellow),
		errText:        s().Foreground(lipgloss.Red),
		passed:         s().Foreground(lipgloss.Green),
		failed:         s().Bold(true).Foreground(lipgloss.Red),
		running:        s().Foreground(lipgloss.Yellow),
		skipped:        s().Foreground(lipgloss.BrightBlack),
		pending:        s().Foreground(lipgloss.BrightBlack),
		anonOn:         s().Bold(true).Foreground(lipgloss.Yellow),
		anonOff:        s().Bold(true).Foreground(lipgloss.Green),
		anonPartial:    s().Bold(true).Foreground(lipgloss.Cyan),
		clusterMissing: s().Foreground(lipgloss.BrightBlack),
	}
}
