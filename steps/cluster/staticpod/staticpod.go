// Package staticpod reads and edits kube-apiserver's static-Pod manifest:
// its flags as the kubelet reads them, and the edit a person makes to
// change them, both as Go (the backends) and as the sed command a person
// types (hands-on mode, handouts). The two are one edit: items named by
// the change are deleted, and the flags to set go right under
// "- kube-apiserver", where the article adds --anonymous-auth=false. The
// edit depends on no line of the file but that one, so the same command
// works on any kubeadm manifest, edited before or not.
package staticpod

import (
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

// Indent is the indent of the command's items in kubeadm's manifests, and
// in the one the local backend writes.
const Indent = "    "

// commandRE finds the first item of kube-apiserver's command list, as
// kubeadm writes it ("    - kube-apiserver").
var commandRE = regexp.MustCompile(`^` + Indent + `- kube-apiserver[ \t]*$`)

// Flags is kube-apiserver's command line in manifest, flags only, as the
// kubelet reads it.
func Flags(manifest []byte) ([]string, error) {
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

// Edit applies the change to manifest: every item of a flag named in set
// or remove is deleted, and set is added under "- kube-apiserver", in its
// order. The result is checked by reading it as the kubelet will.
func Edit(manifest []byte, set, remove []string) ([]byte, error) {
	before, err := Flags(manifest)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(manifest), "\n")
	first := slices.IndexFunc(lines, func(l string) bool { return commandRE.MatchString(strings.TrimRight(l, "\r\n")) })
	if first < 0 {
		return nil, fmt.Errorf("no %q line in the kube-apiserver manifest", Indent+"- kube-apiserver")
	}
	drop := names(set, remove)
	var out []string
	for i, line := range lines {
		if i != first && itemOf(drop).MatchString(strings.TrimRight(line, "\r\n")) {
			continue
		}
		out = append(out, line)
		if i == first {
			for _, f := range set {
				item, err := itemLine(f)
				if err != nil {
					return nil, err
				}
				out = append(out, item)
			}
		}
	}
	result := []byte(strings.Join(out, ""))
	got, err := Flags(result)
	if err != nil {
		return nil, fmt.Errorf("edited kube-apiserver manifest: %w", err)
	}
	want := slices.Clone(set)
	for _, f := range before {
		if !slices.Contains(drop, cluster.FlagName(f)) {
			want = append(want, f)
		}
	}
	if !slices.Equal(got, want) {
		return nil, fmt.Errorf("edited kube-apiserver manifest reads as %q, want %q", got, want)
	}
	return result, nil
}

// sedArgs is the edit as the arguments of sed, before the file: the same
// bytes as Edit makes. GNU sed's (bsd false) is what Linux has, and the
// kind node; BSD sed's (macOS) differs in two places: -i takes its backup
// suffix as the next argument (an empty one for none), and a\ takes its
// text on the next line, where a backslash keeps the item's leading spaces.
func sedArgs(set, remove []string, bsd bool) ([]string, error) {
	args := []string{"-i", "-E"}
	if bsd {
		args = []string{"-i", "", "-E"}
	}
	if drop := names(set, remove); len(drop) > 0 {
		args = append(args, "-e", "/"+itemOf(drop).String()+"/d")
	}
	// sed appends each a\ text after the line in the order given.
	for _, f := range set {
		item, err := itemLine(f)
		if err != nil {
			return nil, err
		}
		text := strings.ReplaceAll(strings.TrimSuffix(item, "\n"), `\`, `\\`)
		if bsd {
			text = "\n\\" + text
		}
		args = append(args, "-e", `/^`+Indent+`- kube-apiserver$/a\`+text)
	}
	return args, nil
}

// Sed is the edit as a GNU sed command on file (a shell word: a path, or a
// quoted variable).
func Sed(set, remove []string, file string) (string, error) {
	return sed(set, remove, file, false)
}

// SedBSD is Sed for the sed of macOS and the BSDs.
func SedBSD(set, remove []string, file string) (string, error) {
	return sed(set, remove, file, true)
}

func sed(set, remove []string, file string, bsd bool) (string, error) {
	args, err := sedArgs(set, remove, bsd)
	if err != nil {
		return "", err
	}
	for i, a := range args {
		args[i] = cluster.ShellQuote(a)
	}
	return "sed " + strings.Join(args, " ") + " " + file, nil
}

// itemOf matches the command items of the flags named.
func itemOf(names []string) *regexp.Regexp {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return regexp.MustCompile(`^[[:space:]]*- ['"]?(` + strings.Join(quoted, "|") + `)(=|['"]?$)`)
}

func names(set, remove []string) []string {
	var out []string
	for _, f := range slices.Concat(set, remove) {
		if n := cluster.FlagName(f); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// itemLine renders flag as an item of the command list.
func itemLine(flag string) (string, error) {
	out, err := yaml.Marshal(flag)
	if err != nil {
		return "", fmt.Errorf("render %q as YAML: %w", flag, err)
	}
	return Indent + "- " + strings.TrimSuffix(string(out), "\n") + "\n", nil
}
