package tui

import (
	"os"
	"strconv"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
)

// markdown renders explanations, wrapped to a width, as glamour's dark
// style did (its ASCII style under NO_COLOR). It parses with goldmark,
// which glamour is built on, and styles with lipgloss: glamour's package
// init (chroma's lexers and styles, bluemonday) cost every start of
// anonlab ~20 ms, for code highlighting no explanation uses. Each
// rendering is kept: a resize or a spinner tick must not render again.
type markdown struct {
	parser parser.Parser
	style  mdStyle
	done   map[mdKey]string
}

type mdKey struct {
	text  string
	width int
}

// mdStyle is how each element looks: a lipgloss style, or under NO_COLOR
// plain text where **strong** and *emphasis* keep their marks.
type mdStyle struct {
	plain                          bool
	strong, emph, code, heading    lipgloss.Style
	h1, link, linkText, codeBlock  lipgloss.Style
	codePad, bullet, quote, hrLine string
}

func newMarkdown() *markdown {
	s := lipgloss.NewStyle
	st := mdStyle{
		strong: s().Bold(true), emph: s().Italic(true),
		code:     s().Foreground(lipgloss.Color("203")).Background(lipgloss.Color("236")),
		heading:  s().Bold(true).Foreground(lipgloss.Color("39")),
		h1:       s().Bold(true).Foreground(lipgloss.Color("228")).Background(lipgloss.Color("63")),
		link:     s().Underline(true).Foreground(lipgloss.Color("30")),
		linkText: s().Bold(true).Foreground(lipgloss.Color("35")), codeBlock: s().Foreground(lipgloss.Color("244")),
		codePad: "\u00a0", bullet: "• ", quote: "│ ", hrLine: "--------",
	}
	if os.Getenv("NO_COLOR") != "" {
		st = mdStyle{plain: true, bullet: "• ", quote: "| ", hrLine: "--------"}
	}
	return &markdown{parser: parser.NewParser(
		parser.WithBlockParsers(parser.DefaultBlockParsers()...),
		parser.WithInlineParsers(parser.DefaultInlineParsers()...),
		parser.WithParagraphTransformers(parser.DefaultParagraphTransformers()...)),
		style: st, done: map[mdKey]string{}}
}

// render returns text rendered at width: a margin of two columns each
// side, paragraphs wrapped, blocks apart by a blank line.
func (md *markdown) render(src string, width int) string {
	k := mdKey{src, width}
	if s, ok := md.done[k]; ok {
		return s
	}
	b := []byte(src)
	doc := md.parser.Parse(text.NewReader(b))
	out := indent(md.blocks(doc, b, max(width-4, 1)), "  ", "  ")
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	out = strings.Join(lines, "\n")
	md.done[k] = out
	return out
}

// blocks renders n's children, each a block, at width.
func (md *markdown) blocks(n ast.Node, src []byte, width int) string {
	var out []string
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		out = append(out, md.block(c, src, width))
	}
	return strings.Join(out, "\n\n")
}

func (md *markdown) block(n ast.Node, src []byte, width int) string {
	st := md.style
	switch n := n.(type) {
	case *ast.Heading:
		t := md.inline(n, src)
		switch {
		case st.plain:
			t = strings.Repeat("#", n.Level) + " " + t
		case n.Level == 1:
			t = st.h1.Render(" " + t + " ")
		default:
			t = st.heading.Render(strings.Repeat("#", n.Level) + " " + t)
		}
		return lipgloss.Wrap(t, width, "")
	case *ast.List:
		return md.list(n, src, width)
	case *ast.Blockquote:
		return indent(md.blocks(n, src, max(width-2, 1)), st.quote, st.quote)
	case *ast.ThematicBreak:
		return md.styled(st.codeBlock, st.hrLine)
	case *ast.FencedCodeBlock, *ast.CodeBlock, *ast.HTMLBlock:
		var lines []string
		for i := 0; i < n.Lines().Len(); i++ {
			s := n.Lines().At(i)
			lines = append(lines, md.styled(st.codeBlock, strings.TrimRight(string(s.Value(src)), "\n")))
		}
		if _, html := n.(*ast.HTMLBlock); html {
			return strings.Join(lines, "\n")
		}
		return indent(strings.Join(lines, "\n"), "  ", "  ")
	default: // paragraphs and a list item's text
		return lipgloss.Wrap(md.inline(n, src), width, "")
	}
}

// list renders each item after its bullet or number, its further lines
// under its first; a loose list has a blank line between items.
func (md *markdown) list(l *ast.List, src []byte, width int) string {
	var items []string
	i := l.Start
	for it := l.FirstChild(); it != nil; it = it.NextSibling() {
		mark := md.style.bullet
		if l.IsOrdered() {
			mark = strconv.Itoa(i) + ". "
			i++
		}
		w := len([]rune(mark))
		var parts []string
		for c := it.FirstChild(); c != nil; c = c.NextSibling() {
			parts = append(parts, md.block(c, src, max(width-w, 1)))
		}
		items = append(items, indent(strings.Join(parts, "\n"), mark, strings.Repeat(" ", w)))
	}
	if l.IsTight {
		return strings.Join(items, "\n")
	}
	return strings.Join(items, "\n\n")
}

// inline renders n's inline children on one line; wrapping is the
// block's.
func (md *markdown) inline(n ast.Node, src []byte) string {
	st := md.style
	var b strings.Builder
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch c := c.(type) {
		case *ast.Text:
			b.Write(c.Segment.Value(src))
			switch {
			case c.HardLineBreak():
				b.WriteString("\n")
			case c.SoftLineBreak():
				b.WriteString(" ")
			}
		case *ast.String:
			b.Write(c.Value)
		case *ast.CodeSpan:
			var code strings.Builder
			for t := c.FirstChild(); t != nil; t = t.NextSibling() {
				if t, ok := t.(*ast.Text); ok {
					code.Write(t.Segment.Value(src))
				}
			}
			if st.plain {
				b.WriteString(code.String())
			} else {
				b.WriteString(st.code.Render(st.codePad + code.String() + st.codePad))
			}
		case *ast.Emphasis:
			mark, style := "*", st.emph
			if c.Level == 2 {
				mark, style = "**", st.strong
			}
			if st.plain {
				b.WriteString(mark + md.inline(c, src) + mark)
			} else {
				b.WriteString(style.Render(md.inline(c, src)))
			}
		case *ast.Link:
			b.WriteString(md.styled(st.linkText, md.inline(c, src)) + " " + md.styled(st.link, string(c.Destination)))
		case *ast.AutoLink:
			b.WriteString(md.styled(st.link, string(c.URL(src))))
		case *ast.Image:
			b.WriteString(md.inline(c, src))
		case *ast.RawHTML:
			for i := 0; i < c.Segments.Len(); i++ {
				s := c.Segments.At(i)
				b.Write(s.Value(src))
			}
		default:
			b.WriteString(md.inline(c, src))
		}
	}
	return b.String()
}

// styled is s in style, or as it is under NO_COLOR.
func (md *markdown) styled(style lipgloss.Style, s string) string {
	if md.style.plain || s == "" {
		return s
	}
	return style.Render(s)
}

// indent puts first before the first line of s and rest before the others.
func indent(s, first, rest string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if i == 0 {
			lines[i] = first + l
		} else if l != "" {
			lines[i] = rest + l
		}
	}
	return strings.Join(lines, "\n")
}
