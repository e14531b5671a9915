package cluster

import "strings"

// LastErrorLine is kube-apiserver's own last error among its log lines:
// klog's "command failed" line when there is one, else the last
// error-level line, else the last line.
func LastErrorLine(lines []string) string {
	var last, lastErr, failed string
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		last = line
		switch {
		case strings.Contains(line, `"command failed"`):
			failed = line
		case line[0] == 'E' || line[0] == 'F' || strings.HasPrefix(line, "Error:"):
			lastErr = line
		}
	}
	for _, s := range []string{failed, lastErr, last} {
		if s != "" {
			return s
		}
	}
	return ""
}
