package report

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/scenarios"
	"github.com/anonlab/anonlab/steps"
)

const behaviourFile = "../../docs/behaviour.md"

// behaviourTable is one scenario's table in docs/behaviour.md.
type behaviourTable struct {
	versions []string // as kube-apiserver reported them
	rows     []behaviourRow
}

type behaviourRow struct {
	id      string
	cleanup bool
	cells   []string
}

var (
	tableHeading = regexp.MustCompile("^## `([^`]+)`")
	rowLabel     = regexp.MustCompile("^(cleanup )?`([^`]+)`")
)

// parseBehaviour reads the tables of docs/behaviour.md, by scenario name.
func parseBehaviour(doc string) (map[string]*behaviourTable, error) {
	tables := map[string]*behaviourTable{}
	var cur *behaviourTable
	for n, line := range strings.Split(doc, "\n") {
		if m := tableHeading.FindStringSubmatch(line); m != nil {
			cur = &behaviourTable{}
			tables[m[1]] = cur
			continue
		}
		if cur == nil || !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") {
			continue
		}
		cells := splitRow(line)
		if cur.versions == nil {
			for _, h := range cells[1:] {
				cur.versions = append(cur.versions, strings.Fields(h)[0])
			}
			continue
		}
		m := rowLabel.FindStringSubmatch(cells[0])
		if m == nil || len(cells) != len(cur.versions)+1 {
			return nil, fmt.Errorf("line %d: %q is not a step's row of %d versions", n+1, line, len(cur.versions))
		}
		cur.rows = append(cur.rows, behaviourRow{id: m[2], cleanup: m[1] != "", cells: cells[1:]})
	}
	return tables, nil
}

// splitRow is a table row's cells, unescaped.
func splitRow(line string) []string {
	const pipe = "\x00"
	line = strings.ReplaceAll(strings.Trim(line, "| "), `\|`, pipe)
	var cells []string
	for _, c := range strings.Split(line, "|") {
		cells = append(cells, strings.ReplaceAll(strings.TrimSpace(c), pipe, "|"))
	}
	return cells
}

var (
	observedStatus = regexp.MustCompile(`^(passed|failed)(?: \((\d+)\))?$`)
	cascade        = regexp.MustCompile(`^step "([^"]+)" was skipped, and this step expects the state it makes$`)
	// versionReason is how steps.Step.Excluded says a version leaves a step out.
	versionReason = regexp.MustCompile(`Kubernetes .*; this cluster runs |no cluster says its version yet`)
)

// checkBehaviour holds every cell of tables to the scenarios' per-version
// expectations: every scenario has a table with its steps in order; a step
// the scenario excludes on a version is skipped there for that reason; any
// other is skipped only after an excluded step whose state it needs, or for
// a reason of the backend's, or passed with the status its expectation for
// that version names; no cell failed.
func checkBehaviour(tables map[string]*behaviourTable, scs []*steps.Scenario) []error {
	var errs []error
	for _, sc := range scs {
		tb := tables[sc.Name]
		if tb == nil {
			errs = append(errs, fmt.Errorf("scenario %s has no table", sc.Name))
			continue
		}
		delete(tables, sc.Name)
		var want []behaviourRow
		for _, st := range sc.Steps {
			want = append(want, behaviourRow{id: st.ID})
		}
		for _, st := range sc.Cleanup {
			want = append(want, behaviourRow{id: st.ID, cleanup: true})
		}
		if len(want) != len(tb.rows) {
			errs = append(errs, fmt.Errorf("scenario %s: %d steps, its table %d rows", sc.Name, len(want), len(tb.rows)))
			continue
		}
		for i, row := range tb.rows {
			if row.id != want[i].id || row.cleanup != want[i].cleanup {
				errs = append(errs, fmt.Errorf("scenario %s: row %d is step %q (cleanup %t), the scenario's is %q (cleanup %t)", sc.Name, i+1, row.id, row.cleanup, want[i].id, want[i].cleanup))
				continue
			}
			st := sc.Steps
			j := i
			if row.cleanup {
				st, j = sc.Cleanup, i-len(sc.Steps)
			}
			for c, v := range tb.versions {
				if err := checkCell(st[j], v, row.cells[c], tb, c); err != nil {
					errs = append(errs, fmt.Errorf("scenario %s, step %q on %s: %v", sc.Name, row.id, v, err))
				}
			}
		}
	}
	for name := range tables {
		errs = append(errs, fmt.Errorf("table %s: no embedded scenario has that name", name))
	}
	return errs
}

func checkCell(st *steps.Step, version, cell string, tb *behaviourTable, col int) error {
	excluded := st.Excluded(version)
	if why, ok := strings.CutPrefix(cell, "skipped: "); ok {
		if excluded != "" {
			if why != excluded {
				return fmt.Errorf("skipped because %q, but the scenario skips it because %q", why, excluded)
			}
			return nil
		}
		if m := cascade.FindStringSubmatch(why); m != nil {
			for _, r := range tb.rows {
				if r.id == m[1] && !r.cleanup && strings.HasPrefix(r.cells[col], "skipped: ") {
					return nil
				}
			}
			return fmt.Errorf("skipped (%s), but that step is not skipped there", why)
		}
		if versionReason.MatchString(why) {
			return fmt.Errorf("skipped (%s), but the scenario runs it on that version", why)
		}
		return nil // the backend's own reason: no kubelet on local, nothing to restore
	}
	if excluded != "" {
		return fmt.Errorf("the table says %q, but the scenario skips it there: %s", cell, excluded)
	}
	m := observedStatus.FindStringSubmatch(cell)
	switch {
	case m == nil:
		return fmt.Errorf("%q is not an observation (passed, failed, with the HTTP status, or skipped: why)", cell)
	case m[1] == steps.Failed:
		return fmt.Errorf("the lab observed %q: the scenario's expectation does not hold there", cell)
	}
	if e := st.ExpectFor(version); e != nil && e.Status != 0 && strconv.Itoa(e.Status) != m[2] {
		return fmt.Errorf("the table says %q, the scenario expects %d", cell, e.Status)
	}
	return nil
}

// TestBehaviourDoc: docs/behaviour.md, which make matrix writes from what
// the lab observed, agrees with every embedded scenario's per-version
// expectations (run make matrix after changing a scenario).
func TestBehaviourDoc(t *testing.T) {
	data, err := os.ReadFile(behaviourFile)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := parseBehaviour(string(data))
	if err != nil {
		t.Fatalf("%s: %v", behaviourFile, err)
	}
	scs, err := steps.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range checkBehaviour(tables, scs) {
		t.Errorf("%s: %v (make matrix rewrites it from what the lab observes)", behaviourFile, err)
	}
}

// TestBehaviourDocDrift: the check fails when a scenario's expectation
// changes without the table, and when the table changes without the
// scenario (modified copies of both).
func TestBehaviourDocDrift(t *testing.T) {
	data, err := os.ReadFile(behaviourFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	auth, err := fs.ReadFile(scenarios.FS, "anonymous-auth.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		doc, yaml func(string) string
		want      string
	}{
		{"expected status changed", nil, func(s string) string {
			return strings.Replace(s, "status: 403", "status: 404", 1)
		}, "the scenario expects 404"},
		{"step for later versions only", nil, func(s string) string {
			return strings.Replace(s, "    request:\n", "    kubernetes: \">=1.99\"\n    request:\n", 1)
		}, "the scenario skips it there: the step is for Kubernetes >=1.99"},
		{"observed status changed", func(s string) string {
			return strings.Replace(s, "passed (403)", "passed (200)", 1)
		}, nil, "the scenario expects 403"},
		{"observed failure", func(s string) string {
			return strings.Replace(s, "passed (403)", "failed (403)", 1)
		}, nil, "the scenario's expectation does not hold there"},
		{"skipped for a version the scenario runs it on", func(s string) string {
			return regexp.MustCompile("(?m)^\\| `api-with-token` .*$").ReplaceAllStringFunc(s, func(row string) string {
				return strings.Replace(row, "passed (200)", "skipped: the step is for Kubernetes <1.24; this cluster runs v1.37.2", 1)
			})
		}, nil, "but the scenario runs it on that version"},
		{"row missing", func(s string) string {
			return regexp.MustCompile("(?m)^\\| `anonymous-api` .*\n").ReplaceAllString(s, "")
		}, nil, "scenario anonymous-auth: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, y := doc, string(auth)
			if tc.doc != nil {
				if d = tc.doc(doc); d == doc {
					t.Fatal("the modification changed nothing in docs/behaviour.md")
				}
			}
			if tc.yaml != nil {
				if y = tc.yaml(y); y == string(auth) {
					t.Fatal("the modification changed nothing in anonymous-auth.yaml")
				}
			}
			sc, err := steps.Parse("scenarios/anonymous-auth.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			tables, err := parseBehaviour(d)
			if err != nil {
				t.Fatal(err)
			}
			tables = map[string]*behaviourTable{sc.Name: tables[sc.Name]}
			errs := checkBehaviour(tables, []*steps.Scenario{sc})
			if len(errs) == 0 || !strings.Contains(fmt.Sprint(errs), tc.want) {
				t.Errorf("errors %v, want one saying %q", errs, tc.want)
			}
		})
	}
}

// TestWriteBehaviour: a version no cluster started on is listed with the
// reason, not a column; versions of the default list not asked for are
// named; a column is headed by the observed version; the written file is
// read back by the consistency test's parser.
func TestWriteBehaviour(t *testing.T) {
	sc, err := steps.Load("anonymous-auth")
	if err != nil {
		t.Fatal(err)
	}
	observe := func(version string, fail bool) *Observer {
		o := NewObserver()
		o.Emit(steps.ScenarioStarted{Steps: []steps.StepInfo{{ID: sc.Steps[0].ID}, {ID: sc.Steps[1].ID}}})
		if fail {
			o.Emit(steps.StepFinished{Step: sc.Steps[0].ID, Status: steps.Failed, Error: "kube-apiserver could not be built: undefined: x\nmore"})
			o.Emit(steps.StepFinished{Step: sc.Steps[1].ID, Status: steps.Skipped, Error: "step could not run"})
			return o
		}
		o.Emit(steps.ClusterState{KubernetesVersion: version})
		o.Emit(steps.StepFinished{Step: sc.Steps[0].ID, Status: steps.Passed})
		o.Emit(steps.HTTPExchange{Step: sc.Steps[1].ID, Status: 403})
		o.Emit(steps.StepFinished{Step: sc.Steps[1].ID, Status: steps.Failed})
		return o
	}
	runs := map[string]map[string]*Observer{sc.Name: {"v1.37": observe("v1.37.2", false), "v1.24.17": observe("", true)}}
	var b bytes.Buffer
	if err := WriteBehaviour(&b, []string{"v1.20.2", "v1.24.17", "v1.37"}, []string{"v1.24.17", "v1.37"}, []*steps.Scenario{sc}, runs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Versions in this file: v1.37.\n",
		"Not run for this file: v1.20.2, of `make matrix`'s default list.",
		`make matrix MATRIX_VERSIONS="v1.24.17 v1.37 v1.20.2"`,
		"- v1.24.17 did not run: step \"create-cluster\": kube-apiserver could not be built: undefined: x\n",
		"| step | v1.37.2 (asked for v1.37) |\n",
		"| `" + sc.Steps[0].ID + "` " + sc.Steps[0].Title.In("en") + " | passed |\n",
		"| `" + sc.Steps[1].ID + "` " + sc.Steps[1].Title.In("en") + " | failed (403) |\n",
		"| `" + sc.Steps[2].ID + "` " + sc.Steps[2].Title.In("en") + " | not run |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	tables, err := parseBehaviour(out)
	if err != nil {
		t.Fatal(err)
	}
	if tb := tables[sc.Name]; tb == nil || len(tb.rows) != len(sc.Steps)+len(sc.Cleanup) || strings.Join(tb.versions, ",") != "v1.37.2" {
		t.Errorf("read back: %+v", tb)
	}
}
