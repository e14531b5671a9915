package tui

import (
	"os"
	"regexp"
	"strings"

	"charm.land/glamour/v2"
	glamourstyles "charm.land/glamour/v2/styles"
	"github.com/charmbracelet/x/ansi"
)

// markdown renders explanations with glamour, wrapped to a width. A
// renderer per width and each rendering are kept: a resize or a spinner
// tick must not render them again.
type markdown struct {
	renderers map[int]*glamour.TermRenderer
	done      map[mdKey]string
}

type mdKey struct {
	text  string
	width int
}

func newMarkdown() *markdown {
	return &markdown{renderers: map[int]*glamour.TermRenderer{}, done: map[mdKey]string{}}
}

// render returns text rendered at width; text that does not render is
// shown as it is, wrapped.
func (md *markdown) render(text string, width int) string {
	k := mdKey{text, width}
	if s, ok := md.done[k]; ok {
		return s
	}
	out := ansi.Wrap(text, width, "")
	r, ok := md.renderers[width]
	if !ok {
		var err error
		if r, err = glamour.NewTermRenderer(markdownStyle(), glamour.WithWordWrap(width)); err != nil {
			r = nil
		}
		md.renderers[width] = r
	}
	if r != nil {
		if s, err := r.Render(text); err == nil {
			out = trimLines(s)
		}
	}
	md.done[k] = out
	return out
}

// markdownStyle is glamour's plain style under NO_COLOR, where **bold**
// and `code` keep their marks; else GLAMOUR_STYLE's (dark by default,
// light for a light terminal).
func markdownStyle() glamour.TermRendererOption {
	if os.Getenv("NO_COLOR") != "" {
		return glamour.WithStandardStyle(glamourstyles.NoTTYStyle)
	}
	return glamour.WithEnvironmentConfig()
}

// trimLines drops glamour's blank first and last lines and the styled
// spaces it pads each line with.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(padding.ReplaceAllString(l, ""), " ")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

var padding = regexp.MustCompile(`(?:\x1b\[[0-9;]*m \x1b\[m)+$`)
