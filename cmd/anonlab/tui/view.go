package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/progress"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/anonlab/anonlab/steps"
)

// The screen: a two-line header and a rule, the step list beside the
// selected step's detail, a status line and the keys.
const (
	headerHeight = 3
	footerHeight = 1
)

// View implements tea.Model.
func (m Walkthrough) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "anonlab"
	if m.scenario.Scenario != "" {
		v.WindowTitle += ": " + m.scenario.Scenario
	}
	return v
}

func (m Walkthrough) render() string {
	h := m.vp.Height()
	left := lipgloss.NewStyle().Width(m.leftWidth).Height(h).MaxHeight(h).Render(m.stepList(m.leftWidth, h))
	sep := m.st.rule.Render(strings.TrimSuffix(strings.Repeat(" │ \n", h), "\n"))
	body := lipgloss.JoinHorizontal(lipgloss.Top, left, sep, m.vp.View())
	// MaxWidth: bubbles' help overflows when what fits leaves no room for
	// its ellipsis (charmbracelet/bubbles#1038).
	help := lipgloss.NewStyle().MaxWidth(m.width).Render(m.help.View(m.keys))
	return strings.Join([]string{m.header(), body, m.statusLine(), help}, "\n")
}

func (m Walkthrough) helpHeight() int { return lipgloss.Height(m.help.View(m.keys)) }

// header names the scenario and says where the cluster is and whether it
// takes anonymous requests right now.
func (m Walkthrough) header() string {
	title := m.st.app.Render("anonlab")
	if m.scenario.Title != "" {
		title += "  " + m.st.title.Render(m.scenario.Title)
	}
	backend := m.scenario.Backend
	if m.cluster.Backend != "" {
		backend = m.cluster.Backend
	}
	parts := []string{"backend " + orDefault(backend, "…")}
	switch {
	case m.cluster.Running:
		parts = append(parts, "Kubernetes "+orDefault(m.cluster.KubernetesVersion, "?"), orDefault(m.cluster.URL, "?"),
			"anonymous auth "+m.anonymous(m.cluster.AnonymousAuth))
	case m.cluster.Step != "":
		parts = append(parts, m.st.clusterMissing.Render("cluster deleted"))
	default:
		parts = append(parts, m.st.clusterMissing.Render("no cluster yet"))
	}
	info := strings.Join(parts, m.st.dim.Render(" · "))
	rule := m.st.rule.Render(strings.Repeat("─", m.width))
	return ansi.Truncate(title, m.width, "…") + "\n" + ansi.Truncate(info, m.width, "…") + "\n" + rule
}

func (m Walkthrough) anonymous(state string) string {
	switch state {
	case "on":
		return m.st.anonOn.Render("ON")
	case "off":
		return m.st.anonOff.Render("OFF")
	case "":
		return m.st.dim.Render("unknown")
	}
	return m.st.anonPartial.Render(state)
}

// orDefault is s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// stepList is the left pane: every step with its status and time, and
// under each finished one what came of it, as room allows.
func (m Walkthrough) stepList(w, h int) string {
	if !m.started {
		return m.spin.View() + " starting…"
	}
	type entry struct {
		line    string
		outcome []string
		row     int // -1 for a heading
	}
	var entries []entry
	const indent = 4
	for i, r := range m.rows {
		if i == m.nMain {
			entries = append(entries, entry{line: m.st.dim.Render("cleanup"), row: -1})
		}
		e := entry{line: m.rowLine(i, w), row: i}
		if o := m.outcome(r); o != "" {
			e.outcome = strings.Split(ansi.Wrap(o, w-indent, ""), "\n")
		}
		entries = append(entries, e)
	}
	for _, n := range m.notes {
		entries = append(entries, entry{line: m.st.dim.Render(ansi.Truncate("note: "+n, w, "…")), row: -1})
	}

	// Up to three lines of outcome under every step if they fit, fewer if
	// need be, else under the selected step only.
	fits := func(most int, all bool) bool {
		n := len(entries)
		for _, e := range entries {
			if all || e.row == m.selected {
				n += min(len(e.outcome), most)
			}
		}
		return n <= h
	}
	most, all := 0, false
	for _, c := range []struct {
		most int
		all  bool
	}{{3, true}, {2, true}, {1, true}, {3, false}, {1, false}} {
		if fits(c.most, c.all) {
			most, all = c.most, c.all
			break
		}
	}
	var lines []string
	selLine := 0
	for _, e := range entries {
		if e.row == m.selected {
			selLine = len(lines)
		}
		lines = append(lines, e.line)
		if all || e.row == m.selected {
			for _, o := range clip(e.outcome, most, w-indent) {
				lines = append(lines, strings.Repeat(" ", indent)+m.st.dim.Render(o))
			}
		}
	}
	// Too many steps for the height: the window around the selected one.
	if len(lines) > h {
		start := min(max(selLine-h/2, 0), len(lines)-h)
		lines = lines[start : start+h]
	}
	return strings.Join(lines, "\n")
}

func digits(n int) int { return len(fmt.Sprint(n)) }

// clip keeps the first n lines, marking a cut with an ellipsis.
func clip(lines []string, n, width int) []string {
	if n <= 0 {
		return nil
	}
	if len(lines) > n {
		lines = lines[:n]
		lines[n-1] = ansi.Truncate(lines[n-1], width-1, "") + "…"
	}
	return lines
}

// rowLine is a step's line: selection mark, status, number, title, time.
func (m Walkthrough) rowLine(i, w int) string {
	r := m.rows[i]
	mark := " "
	if i == m.selected {
		mark = "▸"
	}
	num := strings.Repeat(" ", digits(m.nMain))
	if !r.info.Cleanup {
		num = fmt.Sprintf("%*d", digits(m.nMain), i+1)
	}
	prefix := mark + " " + m.icon(r) + " " + num + " "
	el := m.elapsed(r)
	titleW := w - lipgloss.Width(prefix) - len(el) - 1
	title := ansi.Truncate(r.info.Title, titleW, "…")
	gap := max(w-lipgloss.Width(prefix)-lipgloss.Width(title)-len(el), 1)
	switch {
	case i == m.selected:
		title = m.st.selected.Render(title)
	case r.status == "":
		title = m.st.pending.Render(title)
	}
	return prefix + title + strings.Repeat(" ", gap) + m.st.dim.Render(el)
}

func (m Walkthrough) icon(r row) string {
	switch r.status {
	case running:
		return m.spin.View()
	case steps.Passed:
		return m.st.passed.Render("✓")
	case steps.Failed:
		return m.st.failed.Render("✗")
	case steps.Skipped:
		return m.st.skipped.Render("–")
	}
	return m.st.pending.Render("·")
}

func (m Walkthrough) elapsed(r row) string {
	switch r.status {
	case running:
		return duration(m.opts.now().Sub(r.started))
	case steps.Passed, steps.Failed:
		return duration(time.Duration(r.duration) * time.Millisecond)
	}
	return ""
}

// duration is short: 12ms, 3.7s, 4m05s.
func duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// outcome says in a line what came of a finished step: the answer to its
// request (its first check when it sent several, as the exposure check
// does), the check that failed, or its last word.
func (m Walkthrough) outcome(r row) string {
	switch r.status {
	case "", running:
		return ""
	case steps.Skipped:
		return strings.TrimSuffix("skipped: "+firstLine(r.err), ": ")
	}
	if r.err != "" {
		return firstLine(r.err)
	}
	var ex *steps.HTTPExchange
	var checks []steps.Check
	var lastLog string
	requests := 0
	for _, it := range r.items {
		switch it := it.(type) {
		case steps.Check:
			if !it.OK {
				return fmt.Sprintf("✗ %s: got %s", it.Name, it.Got)
			}
			checks = append(checks, it)
		case steps.HTTPExchange:
			ex = &it
			requests++
		case steps.Log:
			lastLog = it.Text
		}
	}
	switch {
	case requests > 1 && len(checks) > 0:
		return fmt.Sprintf("%s: %s", checks[0].Name, checks[0].Got)
	case ex != nil && ex.Message != "":
		return fmt.Sprintf("%d · %s", ex.Status, ex.Message)
	case ex != nil:
		// What the checks read in the body: APIVersions, the namespaces.
		parts := []string{fmt.Sprintf("%d %s", ex.Status, ex.StatusText)}
		for _, c := range checks {
			if strings.HasPrefix(c.Name, "jsonpath") {
				parts = append(parts, c.Got)
			}
		}
		return strings.Join(parts, " · ")
	case len(checks) > 0:
		return fmt.Sprintf("%s: %s", checks[0].Name, checks[0].Got)
	case lastLog != "":
		return lastLog
	case r.anonymous != "":
		return "anonymous auth " + r.anonymous
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// statusLine says what is happening and what the next key does.
func (m Walkthrough) statusLine() string {
	var s string
	switch {
	case m.flash != "":
		s = m.flash
	case m.summary != nil:
		s = fmt.Sprintf("Finished: %d passed, %d failed, %d skipped; cleanup done. q quits.", m.summary.Passed, m.summary.Failed, m.summary.Skipped)
	case m.quitting:
		s = m.spin.View() + " Quitting: cleaning up first…"
		if m.current >= 0 {
			s += " " + m.rows[m.current].info.Title
		}
	case !m.started:
		s = m.spin.View() + " Starting…"
	case m.current >= 0:
		r := m.rows[m.current]
		what := fmt.Sprintf("Running step %d of %d", m.current+1, m.nMain)
		if r.waiting {
			what = fmt.Sprintf("Your turn, step %d of %d", m.current+1, m.nMain)
		}
		if r.info.Cleanup {
			what = "Cleaning up"
		}
		s = fmt.Sprintf("%s %s: %s", m.spin.View(), what, r.info.Title)
		if p := r.progress; p != nil {
			s += m.st.dim.Render(" · " + phase(p.Phase))
			if p.Total > 0 {
				s += m.st.dim.Render(fmt.Sprintf(" %d%%", p.Count*100/p.Total))
			}
		}
	case m.all:
		s = m.spin.View() + " Running all the rest…"
	case m.asked:
		s = fmt.Sprintf("%s Starting step %d…", m.spin.View(), m.selected+1)
	case m.atGate():
		s = fmt.Sprintf("Press enter to run step %d: %s", m.next+1, m.rows[m.next].info.Title)
		if m.canRerun() {
			s += " (r re-runs the failed step)"
		}
	default:
		s = m.spin.View() + " …"
	}
	if !m.vp.AtBottom() {
		s += m.st.dim.Render(" · more below: pgdn")
	}
	return ansi.Truncate(s, m.width, "…")
}

// phase names a Progress phase for people.
func phase(p string) string {
	switch p {
	case "build":
		return "building kube-apiserver and etcd (first run only)"
	case "download":
		return "downloading kube-apiserver and etcd (first run only)"
	case "create":
		return "creating the cluster"
	case "wait":
		return "waiting for kube-apiserver to serve"
	}
	return p
}

// howFar is a bar and "812/2143 packages (37%), about 6m10s left" under
// the phase of counted work (a source build), else "".
func howFar(p *steps.Progress, w int) string {
	if p.Total <= 0 {
		return ""
	}
	bar := progress.New(progress.WithWidth(w-2), progress.WithoutPercentage())
	return "\n  " + bar.ViewAs(float64(p.Count)/float64(p.Total)) + "\n  " + hang(p.Backend().HowFar(), w, 2)
}

// detail is the right pane: the selected step's explanation, what it
// ran, and what came back.
func (m Walkthrough) detail() string {
	w := m.vp.Width()
	if !m.started || m.selected >= len(m.rows) {
		return ""
	}
	r := m.rows[m.selected]
	var b strings.Builder
	para := func(s string) {
		if s == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(s)
	}
	if m.next == 0 && m.current < 0 && m.selected == 0 && r.status == "" && m.scenario.Description != "" {
		para(paint(m.st.dim, ansi.Wrap(m.scenario.Description, w, "")))
	}

	heading := fmt.Sprintf("Step %d of %d · %s", m.selected+1, m.nMain, r.info.Title)
	if r.info.Cleanup {
		heading = "Cleanup · " + r.info.Title
	}
	state := m.icon(r) + " " + m.state(r)
	para(paint(m.st.title, ansi.Wrap(heading, w, "")) + "\n" + state)
	if r.err != "" {
		style := m.st.errText
		if r.status == steps.Skipped {
			style = m.st.dim
		}
		b.WriteString("\n" + paint(style, ansi.Wrap(r.err, w, "")))
	}
	if r.info.Explain != "" {
		para(m.md.render(r.info.Explain, w))
	}
	if p := r.progress; p != nil {
		what := fmt.Sprintf("%s · %s", duration(time.Duration(p.ElapsedMS)*time.Millisecond), phase(p.Phase))
		para(m.spin.View() + " " + hang(what, w, 2) + howFar(p, w) + "\n" + paint(m.st.dim, "  "+hang(p.Detail, w, 2)))
	}
	for i := 0; i < len(r.items); i++ {
		switch it := r.items[i].(type) {
		case steps.Command:
			para(m.command(it.Text, w))
		case steps.Waiting:
			para(m.yourTurnView(r, it, w))
		case steps.Observed:
			para(m.observed(it, w))
		case steps.DoneByLab:
			para(paint(m.st.dim, "  the lab did this step for you"))
		case steps.Log:
			para(paint(m.st.dim, "  "+hang(it.Text, w, 2)))
		case steps.Check:
			para(m.check(it, w))
		case steps.HTTPExchange:
			// The checks on this answer come right after it; show them
			// before its body, which can be long.
			var checks []steps.Check
			for i+1 < len(r.items) {
				c, ok := r.items[i+1].(steps.Check)
				if !ok {
					break
				}
				checks = append(checks, c)
				i++
			}
			para(m.exchange(it, checks, w))
		}
	}
	return b.String()
}

// state says where a step stands, in words.
func (m Walkthrough) state(r row) string {
	switch r.status {
	case running:
		if r.waiting {
			return m.st.running.Render("your turn · " + m.elapsed(r))
		}
		return m.st.running.Render("running · " + m.elapsed(r))
	case steps.Passed:
		return m.st.passed.Render("passed in " + m.elapsed(r))
	case steps.Failed:
		return m.st.failed.Render("failed after " + m.elapsed(r))
	case steps.Skipped:
		return m.st.skipped.Render("skipped")
	}
	return m.st.pending.Render("not run yet")
}

// hang wraps s to width, indenting the lines after the first by n: it
// follows a label n wide.
func hang(s string, width, n int) string {
	return strings.ReplaceAll(ansi.Wrap(s, width-n, ""), "\n", "\n"+strings.Repeat(" ", n))
}

// command shows a command ready to copy: long lines are cut between
// arguments with a backslash, so that the copy still runs.
func (m Walkthrough) command(text string, w int) string {
	if strings.HasPrefix(text, "#") {
		return paint(m.st.dim, ansi.Wrap(text, w, ""))
	}
	return m.st.label.Render("Type it yourself") + "\n" + paint(m.st.command, "  "+strings.ReplaceAll(shellWrap(text, w-2), "\n", "\n  "))
}

// yourTurnView is what the attendee is to do: the command, and the hints
// asked for so far.
func (m Walkthrough) yourTurnView(r row, w steps.Waiting, width int) string {
	var b strings.Builder
	b.WriteString(m.st.label.Render("Your turn") + "\n" + paint(m.st.dim, "  "+hang(`in another shell: eval "$(anonlab env)", then type the step; the lab watches`, width, 2)) + "\n")
	for i := 0; i < r.hints && i < len(r.info.Hints); i++ {
		b.WriteString(m.st.label.Render(fmt.Sprintf("Hint %d", i+1)) + " " + hang(r.info.Hints[i], width, 7) + "\n")
	}
	b.WriteString(m.st.dim.Render("h: a hint · s: the lab does it · enter: check again") + "\n")
	b.WriteString(m.command(w.Command, width))
	return b.String()
}

// observed is a request the lab saw for the step.
func (m Walkthrough) observed(o steps.Observed, w int) string {
	user := o.User
	if user == "" {
		user = "not authenticated"
	}
	mark := m.st.passed.Render("✓")
	if !o.Matched {
		mark = m.st.skipped.Render("·")
	}
	line := fmt.Sprintf("%s %s · %s → %d", strings.ToUpper(o.Verb), o.Path, user, o.Status)
	s := mark + " " + m.st.label.Render("Seen") + " " + hang(line, w, 7) + "\n" + paint(m.st.dim, "  "+hang("why: "+o.Explain, w, 2))
	if o.Why != "" {
		s += "\n" + paint(m.st.errText, "  "+hang(o.Why, w, 2))
	}
	return s
}

func (m Walkthrough) exchange(ex steps.HTTPExchange, checks []steps.Check, w int) string {
	var b strings.Builder
	b.WriteString(m.command(ex.Command, w) + "\n")
	b.WriteString(m.st.label.Render("Request ") + " " + hang(fmt.Sprintf("%s %s · as %s", ex.Method, ex.Path, ex.Identity), w, 9) + "\n")
	status := fmt.Sprintf("%d %s", ex.Status, ex.StatusText)
	b.WriteString(m.st.label.Render("Response") + " " + m.st.title.Render(status) + m.st.dim.Render(fmt.Sprintf(" · %d ms", ex.DurationMS)))
	if ex.Audit != nil {
		// What kube-apiserver's audit log says: why this answer.
		b.WriteString("\n" + m.st.label.Render("Why     ") + " " + hang(ex.Audit.Why, w, 9))
	}
	if len(checks) > 0 {
		b.WriteString("\n" + m.st.label.Render("Checks"))
		for _, c := range checks {
			b.WriteString("\n" + m.check(c, w))
		}
	}
	if ex.Body != "" {
		body, marked := m.body(ex.Body, checks, w)
		b.WriteString("\n" + m.st.label.Render("Body"))
		if marked {
			b.WriteString(m.st.dim.Render(" (› marks what the checks look at)"))
		}
		b.WriteString("\n" + body)
	}
	return b.String()
}

// check shows one check with what it wanted and what it got, on one line
// when it fits.
func (m Walkthrough) check(c steps.Check, w int) string {
	icon, gotStyle := m.st.passed.Render("✓"), lipgloss.NewStyle()
	if !c.OK {
		icon, gotStyle = m.st.failed.Render("✗"), m.st.errText
	}
	if lipgloss.Width(fmt.Sprintf("  ✓ %s  want %s · got %s", c.Name, c.Want, c.Got)) <= w {
		return fmt.Sprintf("  %s %s  %s %s %s %s", icon, c.Name, m.st.dim.Render("want"), c.Want, m.st.dim.Render("· got"), gotStyle.Render(c.Got))
	}
	return fmt.Sprintf("  %s %s\n%s%s\n%s%s", icon, hang(c.Name, w, 4),
		m.st.dim.Render("    want: "), hang(c.Want, w, 10),
		m.st.dim.Render("    got:  "), paint(gotStyle, hang(c.Got, w, 10)))
}

// body shows a response body with the lines the checks look at marked,
// and tells whether it marked any.
func (m Walkthrough) body(body string, checks []steps.Check, w int) (string, bool) {
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	marks := markFields(lines, checkedFields(checks))
	marked := false
	for i, l := range lines {
		wrapped := strings.ReplaceAll(ansi.Wrap(l, w-2, ""), "\n", "\n  ")
		if marks[i] {
			lines[i], marked = paint(m.st.highlight, "› "+wrapped), true
		} else {
			lines[i] = "  " + wrapped
		}
	}
	return strings.Join(lines, "\n"), marked
}

// paint styles each line on its own: lipgloss would pad a block's lines
// to one width.
func paint(st lipgloss.Style, s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = st.Render(l)
	}
	return strings.Join(lines, "\n")
}
