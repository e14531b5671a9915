package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/list"
	tea "charm.land/bubbletea/v2"

	"github.com/anonlab/anonlab/steps"
)

// StartFunc starts the engine on the scenario the picker was given.
type StartFunc func(*steps.Scenario) Controller

// Picker is the screen that lists the scenarios; Enter starts the one
// selected and hands over to its Walkthrough.
type Picker struct {
	list  list.Model
	start StartFunc
	opts  []Option
	width int
	// height is the window's; the list leaves a line to spare.
	height int
}

type scenarioItem struct {
	sc   *steps.Scenario
	lang string
}

func (i scenarioItem) Title() string { return i.sc.Name + " — " + i.sc.Title.In(i.lang) }

// Description is the scenario's first sentence: the list shows one line.
func (i scenarioItem) Description() string {
	d := strings.Join(strings.Fields(i.sc.Description.In(i.lang)), " ")
	if s, _, ok := strings.Cut(d, ". "); ok {
		return s + "."
	}
	return d
}

func (i scenarioItem) FilterValue() string { return i.sc.Name + " " + i.sc.Title.In(i.lang) }

// NewPicker returns the picker over scenarios, with titles in lang; opts
// are passed on to the walkthrough.
func NewPicker(scenarios []*steps.Scenario, lang string, start StartFunc, opts ...Option) Picker {
	items := make([]list.Item, len(scenarios))
	for i, sc := range scenarios {
		items[i] = scenarioItem{sc: sc, lang: lang}
	}
	l := list.New(items, list.NewDefaultDelegate(), 80, 23)
	l.Title = "anonlab: pick a scenario"
	l.SetStatusBarItemName("scenario", "scenarios")
	// bubbles v2.2.1's list quits on "v", calling it "select".
	l.KeyMap.Quit = key.NewBinding(key.WithKeys("q", "esc"), key.WithHelp("q", "quit"))
	enter := key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "start"))
	l.AdditionalShortHelpKeys = func() []key.Binding { return []key.Binding{enter} }
	return Picker{list: l, start: start, opts: opts, width: 80, height: 24}
}

// Init implements tea.Model.
func (p Picker) Init() tea.Cmd { return nil }

// Update implements tea.Model.
func (p Picker) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		p.width, p.height = msg.Width, msg.Height
		p.list.SetSize(msg.Width, msg.Height-1)
	case tea.KeyPressMsg:
		if msg.String() == "enter" && p.list.FilterState() != list.Filtering {
			it, ok := p.list.SelectedItem().(scenarioItem)
			if !ok {
				return p, nil
			}
			w := NewWalkthrough(p.start(it.sc), p.opts...)
			next, _ := w.Update(tea.WindowSizeMsg{Width: p.width, Height: p.height})
			return next, next.Init()
		}
	}
	var cmd tea.Cmd
	p.list, cmd = p.list.Update(msg)
	return p, cmd
}

// View implements tea.Model.
func (p Picker) View() tea.View {
	v := tea.NewView(p.list.View())
	v.AltScreen = true
	v.WindowTitle = "anonlab"
	return v
}
