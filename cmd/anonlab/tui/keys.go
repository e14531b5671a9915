package tui

import "charm.land/bubbles/v2/key"

// keyMap is the walkthrough's keys (docs/architecture.md: Enter, a, q, ?). Bindings
// that cannot act right now are disabled, so help shows what can.
type keyMap struct {
	Next, All, Rerun, Hint, Solve, Backup, Up, Down, PageUp, PageDown, Copy, Help, Quit key.Binding
}

func newKeyMap() keyMap {
	return keyMap{
		Next:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "run next step")),
		All:      key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "run all the rest")),
		Rerun:    key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "re-run failed step")),
		Hint:     key.NewBinding(key.WithKeys("h"), key.WithHelp("h", "hint")),
		Solve:    key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "show the solution: the lab does it")),
		Backup:   key.NewBinding(key.WithKeys("b"), key.WithHelp("b", "put the original kube-apiserver manifest back")),
		Up:       key.NewBinding(key.WithKeys("k", "up"), key.WithHelp("↑/k", "previous step")),
		Down:     key.NewBinding(key.WithKeys("j", "down"), key.WithHelp("↓/j", "next step")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "b", "ctrl+u"), key.WithHelp("pgup/b", "scroll up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "space", "ctrl+d"), key.WithHelp("pgdn/space", "scroll down")),
		Copy:     key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "copy command")),
		Help:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "more keys")),
		Quit:     key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit (cleans up)")),
	}
}

// ShortHelp implements help.KeyMap.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Next, k.All, k.Rerun, k.Hint, k.Solve, k.Backup, k.Up, k.Down, k.Help, k.Quit}
}

// FullHelp implements help.KeyMap.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Next, k.All, k.Rerun, k.Hint, k.Solve, k.Backup},
		{k.Up, k.Down, k.PageUp, k.PageDown},
		{k.Copy, k.Help, k.Quit},
	}
}
