package binaries

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/semver"
)

// A pin raises one dependency of an old release's build module to the
// first version that builds and runs with today's Go. It applies only when
// the release resolves an older version.
type pin struct {
	Module, Version, Reason string
}

// pins is every dependency the lab raises, with why.
var pins = []pin{
	{"github.com/modern-go/reflect2", "v1.0.2",
		"reflect2 before v1.0.2 reads the runtime's map internals as they were before Go 1.18: json-iterator (kube-apiserver's JSON codec until 1.22) crashes at the first decode"},
}

// appliedPins is the file in a binaries directory that records the pins
// its build applied, one line each.
const appliedPins = "pins.txt"

// applyPins returns the replace lines for the pins whose module the build
// module in dir resolves below the pin, and says each.
func (b builder) applyPins(dir string) (replaces string, applied []string, err error) {
	args := []string{"list", "-m", "-e", "-json"}
	for _, p := range pins {
		args = append(args, p.Module)
	}
	out, err := b.goOutput(dir, args...)
	if err != nil {
		return "", nil, fmt.Errorf("list the pinned modules: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	have := map[string]string{}
	for dec.More() {
		var m struct {
			Path, Version string
			Replace       *struct{ Version string }
		}
		if err := dec.Decode(&m); err != nil {
			return "", nil, err
		}
		if m.Replace != nil {
			m.Version = m.Replace.Version
		}
		have[m.Path] = m.Version
	}
	for _, p := range pins {
		v, ok := have[p.Module]
		if !ok || v == "" || semver.Compare(v, p.Version) >= 0 {
			continue
		}
		replaces += fmt.Sprintf("\t%s => %s %s\n", p.Module, p.Module, p.Version)
		applied = append(applied, fmt.Sprintf("%s %s → %s: %s", p.Module, v, p.Version, p.Reason))
	}
	return replaces, applied, nil
}

// Pins returns the pins the build of the binaries in dir applied, one
// line each ("module old → new: reason"); none for a directory the lab did
// not build or a release that needed none.
func Pins(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, appliedPins))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}
