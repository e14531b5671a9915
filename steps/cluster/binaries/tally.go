package binaries

import (
	"bufio"
	"bytes"
	"strings"
	"sync"
	"time"
)

// tally counts the packages a source build has compiled against the
// number it will compile, so that its progress can say how far it is.
//
// The total is what `go list -deps` marks stale for the build targets
// (what the build cache does not hold yet), counted once per package
// version over every module of the build; `go build -v` prints each
// package as it compiles it.
type tally struct {
	mu      sync.Mutex
	want    map[string]bool   // path@version of each package to compile
	stage   map[string]string // import path → path@version, for the module being built
	done    map[string]bool
	started time.Time // the first compile of the first stage
	now     func() time.Time
}

func newTally() *tally {
	return &tally{want: map[string]bool{}, done: map[string]bool{}, now: time.Now}
}

// listFormat is the `go list -f` template whose output add reads.
const listFormat = `{{if .Stale}}{{.ImportPath}} {{with .Module}}{{.Path}}@{{.Version}}{{end}}{{end}}`

// add counts the packages of one `go list -deps -f listFormat` output and
// returns them for stage.
func (t *tally) add(list []byte) map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	pkgs := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		path, mod, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if path == "" {
			continue
		}
		key := path + " " + mod // std packages have no module: one key each
		pkgs[path] = key
		t.want[key] = true
	}
	return pkgs
}

// begin starts counting the lines of the build of the module whose list
// add returned.
func (t *tally) begin(pkgs map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stage = pkgs
	if t.started.IsZero() {
		t.started = t.now()
	}
}

// line reads one line of `go build -v`: a package compiled, or anything
// else the go command says.
func (t *tally) line(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if key, ok := t.stage[strings.TrimSpace(l)]; ok {
		t.done[key] = true
	}
}

// minForEstimate is how many packages must be done before the rate says
// anything about the time left (the first ones are the small std ones).
const minForEstimate = 20

// state returns the packages done, the total and the estimated time left
// (0 when it cannot tell yet), assuming the rest compiles at the rate so far.
func (t *tally) state() (count, total int, left time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	count, total = len(t.done), len(t.want)
	if count < minForEstimate || count >= total || t.started.IsZero() {
		return count, total, 0
	}
	elapsed := t.now().Sub(t.started)
	return count, total, elapsed * time.Duration(total-count) / time.Duration(count)
}
