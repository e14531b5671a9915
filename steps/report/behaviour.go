package report

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/anonlab/anonlab/steps"
)

// BehaviourHeader opens docs/behaviour.md; the consistency test reads the
// tables below it.
const BehaviourHeader = "# Which behaviour holds where"

// WriteBehaviour writes docs/behaviour.md: for each scenario a table with a
// row per step (cleanup included), a column per version that ran, each cell
// what the lab observed (passed or failed with the HTTP status
// kube-apiserver answered, or skipped and why). runs is by scenario name,
// then by requested version. A column's header is the version
// kube-apiserver reported on /version. A requested version no scenario
// could start a cluster on is listed with the reason instead of a column,
// and the versions of planned that were not requested are named: no
// version vanishes unsaid. Nothing in it depends on timing, so the same
// binaries write the same file.
func WriteBehaviour(w io.Writer, planned, versions []string, scenarios []*steps.Scenario, runs map[string]map[string]*Observer) error {
	var ran, notRan []string
	observed := map[string]string{}
	why := map[string]string{}
	for _, v := range versions {
		for _, sc := range scenarios {
			if r := runs[sc.Name][v]; r != nil && r.KubernetesVersion != "" {
				observed[v] = r.KubernetesVersion
				break
			} else if r != nil && why[v] == "" {
				why[v] = r.firstError()
			}
		}
		if observed[v] != "" {
			ran = append(ran, v)
		} else {
			notRan = append(notRan, v)
		}
	}
	var b strings.Builder
	b.WriteString(BehaviourHeader + "\n\n")
	b.WriteString("What the lab observed when it ran every embedded scenario on the local backend (a real\n" +
		"kube-apiserver and etcd) for each Kubernetes version below: a table per scenario, a row per\n" +
		"step, a column per version headed by the version kube-apiserver reported on `/version`.\n" +
		"A cell is `passed` or `failed` with the HTTP status kube-apiserver answered, or `skipped:`\n" +
		"and why (a step for other versions, by the scenario's `kubernetes:` constraints, or one the\n" +
		"local backend cannot show).\n" +
		"Written by `make matrix`; `go test ./steps/report -run TestBehaviourDoc` checks every cell\n" +
		"against the scenarios' per-version expectations, so the two cannot drift apart.\n\n")
	fmt.Fprintf(&b, "Versions in this file: %s.\n", list(ran))
	var unasked []string
	for _, v := range planned {
		if !slices.Contains(versions, v) {
			unasked = append(unasked, v)
		}
	}
	if len(unasked) > 0 {
		fmt.Fprintf(&b, "Not run for this file: %s, of `make matrix`'s default list. Add one with\n"+
			"`make matrix MATRIX_VERSIONS=\"%s\"` (its kube-apiserver and etcd are built once\n"+
			"if they are not cached: about 15 minutes on 2 cores).\n", list(unasked), strings.Join(append(slices.Clone(versions), unasked[0]), " "))
	}
	for _, v := range notRan {
		fmt.Fprintf(&b, "- %s did not run: %s\n", v, cellText(why[v]))
	}
	for _, sc := range scenarios {
		fmt.Fprintf(&b, "\n## `%s` — %s\n\n| step |", sc.Name, cellText(sc.Title.In("en")))
		for _, v := range ran {
			header := observed[v]
			if header != v {
				header += " (asked for " + v + ")"
			}
			b.WriteString(" " + header + " |")
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(ran)) + "\n")
		row := func(st *steps.Step, cleanup bool) {
			label := "`" + st.ID + "` " + st.Title.In("en")
			if cleanup {
				label = "cleanup " + label
			}
			b.WriteString("| " + cellText(label) + " |")
			for _, v := range ran {
				b.WriteString(" " + behaviourCell(runs[sc.Name][v].step(st.ID, cleanup)) + " |")
			}
			b.WriteString("\n")
		}
		for _, st := range sc.Steps {
			row(st, false)
		}
		for _, st := range sc.Cleanup {
			row(st, true)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// behaviourCell is what one step showed on one version.
func behaviourCell(o *Observation) string {
	switch {
	case o == nil || o.Result == "":
		return "not run"
	case o.Result == steps.Skipped:
		return "skipped: " + cellText(o.Why)
	case o.Status != 0:
		return o.Result + " (" + strconv.Itoa(o.Status) + ")"
	}
	return o.Result
}

// cellText is s on one line of a Markdown table cell.
func cellText(s string) string {
	s = strings.TrimSpace(strings.SplitN(s, "\n", 2)[0])
	return strings.ReplaceAll(s, "|", `\|`)
}

func list(vs []string) string {
	if len(vs) == 0 {
		return "none"
	}
	return strings.Join(vs, ", ")
}
