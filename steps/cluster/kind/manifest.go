package kind

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/anonlab/anonlab/steps/cluster"
)

// Where kubeadm keeps kube-apiserver's static-Pod manifest in the node,
// and where the lab keeps its own files there.
const (
	manifestPath = "/etc/kubernetes/manifests/kube-apiserver.yaml"
	// nextPath is where the next manifest is written before one rename
	// puts it in place: the kubelet ignores names starting with a dot.
	nextPath = "/etc/kubernetes/manifests/.kube-apiserver.yaml.anonlab"
	// backupPath is outside manifests/: the kubelet would run a copy there
	// as a second Pod.
	backupPath = "/etc/kubernetes/kube-apiserver.yaml.orig"
	// filesDir holds APIServerChange.Files: kubeadm mounts
	// /etc/kubernetes/pki into the kube-apiserver Pod, so a file there is
	// readable by the new apiserver without touching the Pod's volumes.
	filesDir = "/etc/kubernetes/pki/anonlab"
)

// commandRE finds the first item of kube-apiserver's command list, as
// kubeadm writes it ("    - kube-apiserver"); its indent is the items'.
var commandRE = regexp.MustCompile(`^([ \t]*)- kube-apiserver[ \t]*$`)

// command is the kube-apiserver command list of a static-Pod manifest,
// found line by line so that an edit leaves every other byte alone.
type command struct {
	lines  []string // the manifest's lines, each with its line ending
	first  int      // the line "- kube-apiserver"
	end    int      // the line after the last item
	indent string
}

func parseCommand(manifest []byte) (command, error) {
	c := command{lines: strings.SplitAfter(string(manifest), "\n"), first: -1}
	for i, line := range c.lines {
		if m := commandRE.FindStringSubmatch(strings.TrimRight(line, "\r\n")); m != nil {
			c.first, c.indent = i, m[1]
			break
		}
	}
	if c.first < 0 {
		return command{}, errors.New("no \"- kube-apiserver\" command item in the kube-apiserver manifest")
	}
	c.end = c.first + 1
	for c.end < len(c.lines) && strings.HasPrefix(c.lines[c.end], c.indent+"- ") {
		c.end++
	}
	return c, nil
}

// flag is the flag on item line i.
func (c command) flag(i int) (string, error) {
	item := strings.TrimPrefix(strings.TrimRight(c.lines[i], "\r\n"), c.indent+"- ")
	var s string
	if err := yaml.Unmarshal([]byte(item), &s); err != nil {
		return "", fmt.Errorf("kube-apiserver manifest line %d: %w", i+1, err)
	}
	return s, nil
}

// itemLine renders flag as an item of the command list.
func (c command) itemLine(flag string) (string, error) {
	out, err := yaml.Marshal(flag)
	if err != nil {
		return "", err
	}
	return c.indent + "- " + strings.TrimSuffix(string(out), "\n") + "\n", nil
}

// manifestFlags is kube-apiserver's command line in manifest, flags only,
// as the kubelet reads it.
func manifestFlags(manifest []byte) ([]string, error) {
	var pod corev1.Pod
	if err := sigsyaml.Unmarshal(manifest, &pod); err != nil {
		return nil, fmt.Errorf("parse the kube-apiserver manifest: %w", err)
	}
	for _, ctr := range pod.Spec.Containers {
		if ctr.Name == "kube-apiserver" && len(ctr.Command) > 0 {
			return ctr.Command[1:], nil
		}
	}
	return nil, errors.New("the kube-apiserver manifest has no kube-apiserver container with a command")
}

// edit is one line-level change of the command list, kept so that the
// same change can be shown as the sed command a person would type.
type edit struct {
	op   byte   // 'a': append after "- kube-apiserver", 's': replace, 'd': delete
	old  string // the line replaced or deleted, without its line ending
	line string // the new line, without its line ending
}

// editFlags applies change to kube-apiserver's command in manifest: a flag
// to set replaces the item of the same name where it is, or goes right
// under "- kube-apiserver" (where the article adds --anonymous-auth=false);
// a flag to remove, and any duplicate of a set one, is deleted. Every
// other line stays as it was. $(FILES) in values becomes dir. The result
// is checked by parsing it as the kubelet will.
func editFlags(manifest []byte, change cluster.APIServerChange, dir string) ([]byte, []edit, error) {
	c, err := parseCommand(manifest)
	if err != nil {
		return nil, nil, err
	}
	set := map[string]string{} // name → flag
	var order []string
	for _, f := range change.Set {
		f = strings.ReplaceAll(f, cluster.FilesDirPlaceholder, dir)
		name := cluster.FlagName(f)
		if _, ok := set[name]; !ok {
			order = append(order, name)
		}
		set[name] = f
	}
	remove := map[string]bool{}
	for _, f := range change.Remove {
		remove[cluster.FlagName(f)] = true
	}
	var edits []edit
	var items []string
	var want []string // the flags the result must have, in order
	placed := map[string]bool{}
	for i := c.first + 1; i < c.end; i++ {
		old := c.lines[i]
		f, err := c.flag(i)
		if err != nil {
			return nil, nil, err
		}
		name := cluster.FlagName(f)
		next, isSet := set[name]
		switch {
		case isSet && !placed[name]:
			placed[name] = true
			line, err := c.itemLine(next)
			if err != nil {
				return nil, nil, err
			}
			if line != old {
				edits = append(edits, edit{op: 's', old: trimEOL(old), line: trimEOL(line)})
			}
			items, want = append(items, line), append(want, next)
		case isSet || remove[name]:
			edits = append(edits, edit{op: 'd', old: trimEOL(old)})
		default:
			items, want = append(items, old), append(want, f)
		}
	}
	var added []string
	var addedFlags []string
	for _, name := range order {
		if placed[name] {
			continue
		}
		line, err := c.itemLine(set[name])
		if err != nil {
			return nil, nil, err
		}
		edits = append(edits, edit{op: 'a', line: trimEOL(line)})
		added, addedFlags = append(added, line), append(addedFlags, set[name])
	}
	out := slices.Concat(c.lines[:c.first+1], added, items, c.lines[c.end:])
	result := []byte(strings.Join(out, ""))
	got, err := manifestFlags(result)
	if err != nil {
		return nil, nil, fmt.Errorf("edited kube-apiserver manifest: %w", err)
	}
	if want = append(addedFlags, want...); !slices.Equal(got, want) {
		return nil, nil, fmt.Errorf("edited kube-apiserver manifest reads as %q, want %q", got, want)
	}
	return result, edits, nil
}

func trimEOL(s string) string { return strings.TrimRight(s, "\r\n") }

// sedScript is edits as the arguments of one `sed -i` command, in the
// order that gives the same file: GNU sed's a\ keeps the leading blanks of
// the appended line.
func sedScript(indent string, edits []edit) []string {
	var args []string
	for _, e := range edits {
		switch e.op {
		case 's':
			args = append(args, "-e", "s/^"+sedRegexp(e.old)+"$/"+sedReplacement(e.line)+"/")
		case 'd':
			args = append(args, "-e", "/^"+sedRegexp(e.old)+"$/d")
		case 'a':
			args = append(args, "-e", "/^"+sedRegexp(indent+"- kube-apiserver")+"$/a\\"+e.line)
		}
	}
	return args
}

func sedRegexp(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		if strings.ContainsRune(`\/.*[]^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func sedReplacement(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `/`, `\/`, `&`, `\&`)
	return r.Replace(s)
}
