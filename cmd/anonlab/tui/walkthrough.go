package tui

import (
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/anonlab/anonlab/steps"
)

// Option configures the TUI's models.
type Option func(*options)

type options struct {
	now     func() time.Time
	spinner spinner.Spinner
}

// WithClock sets the clock that times the running step (tests fix it).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithSpinner sets the running step's spinner (tests use one frame).
func WithSpinner(s spinner.Spinner) Option { return func(o *options) { o.spinner = s } }

func newOptions(opts []Option) options {
	o := options{now: time.Now, spinner: spinner.MiniDot}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// running is a row's status between its StepStarted and StepFinished; a
// row that has not started has none.
const running = "running"

// row is what the walkthrough knows of one step, main or cleanup.
type row struct {
	info     steps.StepInfo
	status   string
	started  time.Time
	duration int64 // ms, once finished
	err      string
	// items are the step's Command, Log, HTTPExchange and Check events in
	// the order they came.
	items    []steps.Event
	progress *steps.Progress
	// anonymous is anonymous auth as this step left it, when it changed
	// the cluster.
	anonymous string
	// waiting: hands-on mode, the attendee's turn; hints is how many of
	// the step's hints they have asked for.
	waiting bool
	hints   int
}

// Walkthrough is the screen that runs a scenario step by step. Its state
// is built only from the engine's events; the keys become orders sent to
// the Controller from commands, so Update never waits for the engine.
type Walkthrough struct {
	ctl  Controller
	opts options
	keys keyMap
	st   styles
	help help.Model
	spin spinner.Model
	vp   viewport.Model
	md   *markdown

	width, height int
	leftWidth     int

	scenario steps.ScenarioStarted
	started  bool
	cluster  steps.ClusterState
	rows     []row
	nMain    int
	notes    []string // narration outside any step (the safety net)
	summary  *steps.Summary

	current  int  // the running row, or -1
	selected int  // the row shown on the right
	follow   bool // the selection follows the running step
	next     int  // the main step the engine runs on Next
	asked    bool // Next or Rerun sent, its step not started yet
	all      bool
	cleaning bool // cleanup steps have begun
	quitting bool
	closed   bool // the engine sent its last event
	spinning bool
	flash    string // a one-off remark in the status line
}

// NewWalkthrough returns the walkthrough of the run ctl controls.
func NewWalkthrough(ctl Controller, opts ...Option) Walkthrough {
	o := newOptions(opts)
	m := Walkthrough{
		ctl:     ctl,
		opts:    o,
		keys:    newKeyMap(),
		st:      newStyles(),
		help:    help.New(),
		spin:    spinner.New(spinner.WithSpinner(o.spinner)),
		vp:      viewport.New(),
		md:      newMarkdown(),
		current: -1,
		follow:  true,
		// The first frame is drawn before the terminal's size is known.
		width:  80,
		height: 24,
	}
	m.spin.Style = m.st.running
	m.vp.KeyMap = viewport.KeyMap{} // the walkthrough's keys scroll it
	m.vp.SoftWrap = true
	m.layout()
	m.refresh()
	return m
}

// Init implements tea.Model.
func (m Walkthrough) Init() tea.Cmd {
	return tea.Batch(waitForEvent(m.ctl.Events()), m.spin.Tick)
}

// Update implements tea.Model.
func (m Walkthrough) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		m.refresh()
		return m, nil
	case tea.KeyPressMsg:
		return m.key(msg)
	case spinner.TickMsg:
		if !m.busy() {
			m.spinning = false
			return m, nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		m.spinning = true
		m.refresh()
		return m, cmd
	case eventsClosed:
		m.closed = true
		m.refresh()
		if m.quitting {
			return m, tea.Quit
		}
		return m, nil
	case steps.Event:
		m.apply(msg)
		m.refresh()
		cmds := []tea.Cmd{waitForEvent(m.ctl.Events())}
		if m.busy() && !m.spinning {
			m.spinning = true
			cmds = append(cmds, m.spin.Tick)
		}
		return m, tea.Batch(cmds...)
	}
	return m, nil
}

// busy tells whether something moves on screen: a step runs, or the
// engine has yet to start.
func (m Walkthrough) busy() bool { return m.current >= 0 || !m.started }

// apply records one event.
func (m *Walkthrough) apply(ev steps.Event) {
	switch ev := ev.(type) {
	case steps.ScenarioStarted:
		m.scenario, m.started = ev, true
		m.rows = make([]row, len(ev.Steps))
		m.nMain = 0
		for i, s := range ev.Steps {
			m.rows[i].info = s
			if !s.Cleanup {
				m.nMain++
			}
		}
	case steps.ClusterState:
		m.cluster = ev
		if r := m.running(ev.Step); r != nil && ev.Running {
			r.anonymous = ev.AnonymousAuth
		}
	case steps.StepStarted:
		i, ok := m.rowIndex(ev.Index, ev.Cleanup)
		if !ok {
			return
		}
		// A re-run starts the row afresh.
		m.rows[i] = row{info: m.rows[i].info, status: running, started: m.opts.now()}
		m.current, m.asked = i, false
		m.cleaning = m.cleaning || ev.Cleanup
		if m.follow {
			m.selectRow(i)
		}
	case steps.Command:
		m.addItem(ev.Step, ev)
	case steps.HTTPExchange:
		m.addItem(ev.Step, ev)
	case steps.Check:
		m.addItem(ev.Step, ev)
	case steps.Waiting:
		if r := m.running(ev.Step); r != nil {
			r.waiting = true
			r.items = append(r.items, ev)
		}
	case steps.Observed:
		m.addItem(ev.Step, ev)
	case steps.DoneByLab:
		if r := m.running(ev.Step); r != nil {
			r.waiting = false
			r.items = append(r.items, ev)
		}
	case steps.Log:
		if r := m.running(ev.Step); r != nil {
			r.items = append(r.items, ev)
		} else {
			m.notes = append(m.notes, ev.Text)
		}
	case steps.Progress:
		if r := m.running(ev.Step); r != nil {
			r.progress = &ev
		}
	case steps.StepFinished:
		i, ok := m.rowIndex(ev.Index, ev.Cleanup)
		if !ok {
			return
		}
		r := &m.rows[i]
		r.status, r.err, r.duration, r.progress = ev.Status, ev.Error, ev.DurationMS, nil
		if m.current == i {
			m.current = -1
		}
		if !ev.Cleanup && ev.Index >= m.next {
			m.next = ev.Index + 1
		}
	case steps.Summary:
		m.summary = &ev
		// The story ends with the last main step that ran, not with the
		// cleanup after it.
		if m.follow {
			for i := m.nMain - 1; i >= 0; i-- {
				if s := m.rows[i].status; s == steps.Passed || s == steps.Failed {
					m.selectRow(i)
					break
				}
			}
		}
	}
}

func (m *Walkthrough) rowIndex(index int, cleanup bool) (int, bool) {
	if cleanup {
		index += m.nMain
	}
	return index, index >= 0 && index < len(m.rows) && m.rows[index].info.Cleanup == cleanup
}

// running is the running row when it is the step called id.
func (m *Walkthrough) running(id string) *row {
	if m.current >= 0 && m.rows[m.current].info.ID == id {
		return &m.rows[m.current]
	}
	return nil
}

func (m *Walkthrough) addItem(id string, ev steps.Event) {
	if r := m.running(id); r != nil {
		r.items = append(r.items, ev)
	}
}

func (m *Walkthrough) selectRow(i int) {
	if i != m.selected {
		m.vp.GotoTop()
	}
	m.selected = i
}

// atGate tells whether the engine waits, or is about to wait, for an order
// before its next main step.
func (m Walkthrough) atGate() bool {
	return !m.closed && !m.all && !m.asked && !m.quitting && !m.cleaning && m.current < 0 && m.stepsLeft()
}

// stepsLeft tells whether main steps remain; before the scenario's start
// is known, the first one does.
func (m Walkthrough) stepsLeft() bool { return !m.started || m.next < m.nMain }

// canAll tells whether a would run the remaining steps.
func (m Walkthrough) canAll() bool { return !m.all && !m.quitting && !m.cleaning && m.stepsLeft() }

// yourTurn is the running row when the attendee is to do its step.
func (m Walkthrough) yourTurn() *row {
	if m.current >= 0 && m.rows[m.current].waiting && !m.quitting {
		return &m.rows[m.current]
	}
	return nil
}

// canHint tells whether h would show one more hint.
func (m Walkthrough) canHint() bool {
	r := m.yourTurn()
	return r != nil && r.hints < len(r.info.Hints)
}

// canRestore tells whether b would put kube-apiserver's manifest back: the
// attendee is editing it.
func (m Walkthrough) canRestore() bool {
	r := m.yourTurn()
	return r != nil && r.info.Kind == "apiserverFlags"
}

// canRerun tells whether r would re-run the selected step.
func (m Walkthrough) canRerun() bool {
	return m.atGate() && m.selected < m.nMain && m.selected < len(m.rows) && m.rows[m.selected].status == steps.Failed
}

func (m Walkthrough) key(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	m.flash = ""
	var cmd tea.Cmd
	switch {
	case key.Matches(msg, m.keys.Quit):
		return m.quit(msg.String() == "ctrl+c")
	case key.Matches(msg, m.keys.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.layout()
	case key.Matches(msg, m.keys.Next) && m.yourTurn() != nil:
		m.flash = "checking again"
		cmd = order(m.ctl.Recheck)
	case key.Matches(msg, m.keys.Hint) && m.canHint():
		m.rows[m.current].hints++
		m.follow = true
		m.selectRow(m.current)
		m.refresh()
		m.vp.GotoBottom() // the hint comes last: show it on a small screen too
	case key.Matches(msg, m.keys.Backup) && m.canRestore():
		m.flash = "putting the original kube-apiserver manifest back"
		cmd = order(m.ctl.RestoreManifest)
	case key.Matches(msg, m.keys.Solve) && m.yourTurn() != nil:
		m.flash = "the lab does this step"
		cmd = order(m.ctl.Solve)
	case key.Matches(msg, m.keys.Next) && m.atGate():
		m.asked, m.follow = true, true
		m.selectRow(m.next)
		cmd = order(m.ctl.Next)
	case key.Matches(msg, m.keys.All) && m.canAll():
		m.all, m.follow = true, true
		cmd = order(m.ctl.All)
	case key.Matches(msg, m.keys.Rerun) && m.canRerun():
		m.asked, m.follow = true, true
		i := m.selected
		cmd = order(func() { m.ctl.Rerun(i) })
	case key.Matches(msg, m.keys.Up):
		m.move(-1)
	case key.Matches(msg, m.keys.Down):
		m.move(+1)
	case key.Matches(msg, m.keys.PageUp):
		m.vp.HalfPageUp()
	case key.Matches(msg, m.keys.PageDown):
		m.vp.HalfPageDown()
	case key.Matches(msg, m.keys.Copy):
		if c := m.lastCommand(); c != "" {
			m.flash = "copied the command to the clipboard"
			cmd = tea.SetClipboard(c)
		}
	}
	m.refresh()
	return m, cmd
}

// order runs one of the Controller's methods off the update loop.
func order(f func()) tea.Cmd {
	return func() tea.Msg {
		f()
		return nil
	}
}

// move selects the previous or next row that has started.
func (m *Walkthrough) move(delta int) {
	for i := m.selected + delta; i >= 0 && i < len(m.rows); i += delta {
		if m.rows[i].status != "" {
			m.follow = false
			m.selectRow(i)
			return
		}
	}
}

// quit stops the run and keeps drawing until the engine's last event, so
// that the cleanup is seen; a second Ctrl-C leaves at once (the command
// line still waits for the cleanup). Once the run has ended, q just quits.
func (m Walkthrough) quit(force bool) (tea.Model, tea.Cmd) {
	switch {
	case m.summary != nil || m.closed || force && m.quitting:
		return m, tea.Quit
	case m.quitting:
		return m, nil
	}
	stop := m.ctl.Interrupt
	if m.atGate() {
		stop = m.ctl.Stop
	}
	m.quitting, m.follow = true, true
	m.refresh()
	return m, order(stop)
}

// QuitEarly tells whether the person quit before the run had ended.
func (m Walkthrough) QuitEarly() bool { return m.quitting }

// lastCommand is the last command the selected step showed.
func (m Walkthrough) lastCommand() string {
	if m.selected >= len(m.rows) {
		return ""
	}
	items := m.rows[m.selected].items
	for i := len(items) - 1; i >= 0; i-- {
		switch it := items[i].(type) {
		case steps.Command:
			return it.Text
		case steps.HTTPExchange:
			return it.Command
		case steps.Waiting:
			return it.Command
		}
	}
	return ""
}

// refresh brings what depends on the state up to date: which keys act,
// and the right-hand pane's content.
func (m *Walkthrough) refresh() {
	k := &m.keys
	k.Next.SetEnabled(m.atGate() || m.yourTurn() != nil)
	if m.yourTurn() != nil {
		k.Next.SetHelp("enter", "check again")
	} else {
		k.Next.SetHelp("enter", "run next step")
	}
	k.Hint.SetEnabled(m.canHint())
	k.Solve.SetEnabled(m.yourTurn() != nil)
	k.Backup.SetEnabled(m.canRestore())
	k.All.SetEnabled(m.canAll())
	k.Rerun.SetEnabled(m.canRerun())
	k.Copy.SetEnabled(m.lastCommand() != "")
	if m.help.ShowAll {
		k.Help.SetHelp("?", "fewer keys")
	} else {
		k.Help.SetHelp("?", "more keys")
	}
	if m.summary != nil {
		k.Quit.SetHelp("q", "quit")
	}
	m.vp.SetContent(m.detail())
}

// layout sizes the panes to the window.
func (m *Walkthrough) layout() {
	m.help.SetWidth(m.width)
	m.leftWidth = min(max(m.width*3/7, 24), 68)
	m.vp.SetWidth(max(m.width-m.leftWidth-3, 10))
	m.vp.SetHeight(max(m.height-headerHeight-footerHeight-m.helpHeight(), 3))
}
