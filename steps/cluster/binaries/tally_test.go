package binaries

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTally(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "tally", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestTally feeds the recorded go list and go build -v output of a build
// of two modules (see testdata/tally/README): the second compiles only
// what the first did not, and the tally reaches its total exactly.
func TestTally(t *testing.T) {
	tl := newTally()
	semver := tl.add(readTally(t, "semver.list"))
	module := tl.add(readTally(t, "module.list"))
	if _, total, _ := tl.state(); total != 70 {
		t.Fatalf("total = %d, want 70 (63 packages of the first module, 7 more of the second)", total)
	}
	feed := func(name string) {
		for _, l := range strings.Split(string(readTally(t, name)), "\n") {
			tl.line(l)
		}
	}
	tl.begin(semver)
	tl.line("go: downloading golang.org/x/mod v0.43.0") // not a package
	feed("semver.build-v")
	if count, total, _ := tl.state(); count != 63 || total != 70 {
		t.Errorf("after the first module: %d/%d, want 63/70", count, total)
	}
	tl.begin(module)
	feed("module.build-v")
	if count, total, left := tl.state(); count != 70 || total != 70 || left != 0 {
		t.Errorf("at the end: %d/%d, %s left; want 70/70, 0 left", count, total, left)
	}
}

func TestTallyEstimate(t *testing.T) {
	now := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	tl := newTally()
	tl.now = func() time.Time { return now }
	var list, built strings.Builder
	for i := range 100 {
		list.WriteString("example.com/p" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + " example.com@v1.0.0\n")
	}
	stage := tl.add([]byte(list.String()))
	tl.begin(stage)
	for l := range strings.Lines(list.String()) {
		path, _, _ := strings.Cut(l, " ")
		built.WriteString(path + "\n")
	}
	lines := strings.Split(built.String(), "\n")
	for _, l := range lines[:minForEstimate-1] {
		tl.line(l)
	}
	now = now.Add(19 * time.Second)
	if count, _, left := tl.state(); count != minForEstimate-1 || left != 0 {
		t.Errorf("%d done: %s left, want no estimate before %d packages", count, left, minForEstimate)
	}
	for _, l := range lines[minForEstimate-1 : 25] {
		tl.line(l)
	}
	now = now.Add(6 * time.Second) // 25 packages in 25 s: 75 more take 75 s
	if count, total, left := tl.state(); count != 25 || total != 100 || left != 75*time.Second {
		t.Errorf("state = %d/%d, %s left; want 25/100, 1m15s left", count, total, left)
	}
}
