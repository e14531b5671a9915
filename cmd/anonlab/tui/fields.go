package tui

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/anonlab/anonlab/steps"
)

// checkedFields maps the checks on a response to the body fields they
// read, as dotted paths without array indices: "status" reads a Status
// body's code, "jsonpath {.items[*].metadata.name}" items.metadata.name.
// A check it does not know marks nothing.
func checkedFields(checks []steps.Check) map[string]bool {
	fields := map[string]bool{}
	for _, c := range checks {
		name := strings.TrimSuffix(c.Name, " contains")
		switch {
		case name == "status":
			fields["code"] = true
		case name == "reason", name == "message":
			fields[name] = true
		case strings.HasPrefix(name, "jsonpath {") && strings.HasSuffix(name, "}"):
			path := strings.Trim(strings.TrimPrefix(name, "jsonpath "), "{}")
			path = strings.Trim(arrayIndex.ReplaceAllString(path, ""), ".")
			fields[path] = true
		}
	}
	return fields
}

var arrayIndex = regexp.MustCompile(`\[[^\]]*\]`)

// markFields tells which lines of a pretty-printed JSON body (one member
// per line, as the engine writes it) hold one of fields.
func markFields(lines []string, fields map[string]bool) []bool {
	marked := make([]bool, len(lines))
	if len(fields) == 0 {
		return marked
	}
	var stack []string // member names down to this line; "" for array elements
	for i, l := range lines {
		l = strings.TrimSuffix(strings.TrimSpace(l), ",")
		switch {
		case l == "{" || l == "[":
			stack = append(stack, "")
		case strings.HasPrefix(l, "}") || strings.HasPrefix(l, "]"):
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case strings.HasPrefix(l, `"`):
			name, ok := memberName(l)
			if !ok {
				continue
			}
			var path []string
			for _, s := range stack {
				if s != "" {
					path = append(path, s)
				}
			}
			marked[i] = fields[strings.Join(append(path, name), ".")]
			if strings.HasSuffix(l, "{") || strings.HasSuffix(l, "[") {
				stack = append(stack, name)
			}
		}
	}
	return marked
}

// memberName is the name in a `"name": value` line.
func memberName(l string) (string, bool) {
	end := 1
	for end < len(l) && l[end] != '"' {
		if l[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(l) || !strings.HasPrefix(l[end+1:], ":") {
		return "", false
	}
	name, err := strconv.Unquote(l[:end+1])
	return name, err == nil
}

// shellWrap cuts a shell command into lines of at most width columns
// between arguments, ending each cut line with a backslash, so that the
// lines pasted into a shell are the same command. It never cuts inside
// quotes; an argument longer than width gets a line of its own.
func shellWrap(cmd string, width int) string {
	var lines []string
	line := ""
	for _, word := range shellWords(cmd) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word)+2 <= width:
			line += " " + word
		default:
			lines = append(lines, line+" \\")
			line = "  " + word
		}
	}
	return strings.Join(append(lines, line), "\n")
}

// shellWords splits a command at the spaces outside quotes.
func shellWords(cmd string) []string {
	var words []string
	var quote rune
	start := 0
	for i, c := range cmd {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ' ':
			if i > start {
				words = append(words, cmd[start:i])
			}
			start = i + 1
		}
	}
	if start < len(cmd) {
		words = append(words, cmd[start:])
	}
	return words
}
