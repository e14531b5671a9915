package tui

import (
	"strings"
	"testing"
)

// TestMarkdown renders each element explanations may use, in NO_COLOR's
// plain style and in colour.
func TestMarkdown(t *testing.T) {
	src := "# Title\n\nSome *emph*, **strong** and `code span` text that wraps.\n\n" +
		"- one\n- two\n  1. nested\n\n```\nkubectl get ns\n```\n\n> quoted"
	t.Run("plain", func(t *testing.T) {
		t.Setenv("NO_COLOR", "1")
		got := newMarkdown().render(src, 30)
		want := strings.Join([]string{
			"  # Title",
			"",
			"  Some *emph*, **strong**",
			"  and code span text that",
			"  wraps.",
			"",
			"  • one",
			"  • two",
			"    1. nested",
			"",
			"    kubectl get ns",
			"",
			"  | quoted",
		}, "\n")
		if got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("colour", func(t *testing.T) {
		t.Setenv("NO_COLOR", "")
		got := newMarkdown().render("**strong** and `code`", 40)
		for _, want := range []string{"\x1b[1mstrong\x1b[m", "\x1b[38;5;203;48;5;236m\u00a0code\u00a0\x1b[m"} {
			if !strings.Contains(got, want) {
				t.Errorf("%q does not contain %q", got, want)
			}
		}
		if strings.Contains(got, "**") || strings.Contains(got, "`") {
			t.Errorf("marks left in %q", got)
		}
	})
}
