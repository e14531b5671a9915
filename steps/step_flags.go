package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/anonlab/anonlab/steps/cluster"
)

// flagsStep changes kube-apiserver's flags through the backend (an edit of
// its static-Pod manifest, on local and on kind) and
// waits until the new apiserver serves. A change it refuses is rolled back.
//
//	apiserverFlags: {set: [--anonymous-auth=false]}
//	apiserverFlags: {restore: true}
type flagsStep struct {
	Set    []string `yaml:"set"`
	Remove []string `yaml:"remove"`
	// Files maps a file name, usable in a flag value as $(FILES)/name, to
	// the manifest whose content it gets.
	Files   map[string]string `yaml:"files"`
	Restore bool              `yaml:"restore"`
}

func (f *flagsStep) Validate(v *Validator) error {
	if f.Restore && (len(f.Set) > 0 || len(f.Remove) > 0 || len(f.Files) > 0) {
		return v.Errorf("restore", "restore puts the original flags back: give it alone")
	}
	if !f.Restore && len(f.Set) == 0 && len(f.Remove) == 0 {
		return v.Errorf("set", "required: flags to set or remove, or restore: true")
	}
	looksLikeFlag := func(flag string) bool { return strings.HasPrefix(flag, "--") && len(cluster.FlagName(flag)) >= 3 }
	for i, flag := range f.Set {
		if !looksLikeFlag(flag) {
			return v.Errorf(fmt.Sprintf("set[%d]", i), "%q: a flag looks like --name=value", flag)
		}
		if !strings.Contains(flag, "=") {
			return v.Errorf(fmt.Sprintf("set[%d]", i), "%q: give a value, --name=value", flag)
		}
	}
	for i, flag := range f.Remove {
		if !looksLikeFlag(flag) {
			return v.Errorf(fmt.Sprintf("remove[%d]", i), "%q: a flag looks like --name", flag)
		}
	}
	for name, manifest := range f.Files {
		if name == "" || strings.ContainsAny(name, "/\\") {
			return v.Errorf("files", "%q: a plain file name", name)
		}
		if !v.ManifestExists(manifest) {
			return v.Errorf("files."+name, "%q: no such manifest", manifest)
		}
	}
	return nil
}

func (f *flagsStep) changesCluster() bool { return !f.Restore }

func (f *flagsStep) Run(ctx context.Context, sc *StepContext) error {
	rc, ok := sc.Backend.(cluster.APIServerReconfigurer)
	switch {
	case !ok && f.Restore:
		return Skip(fmt.Sprintf("nothing to restore: the %s backend never changes kube-apiserver's flags", sc.Backend.Name()))
	case !ok:
		return Skip(fmt.Sprintf("the %s backend cannot change kube-apiserver's flags (it does not run the control plane)", sc.Backend.Name()))
	}
	ctx = cluster.WithProgress(ctx, sc.progress)
	if f.Restore {
		if sc.cleanup && sc.run.destroysCluster() {
			return Skip("the cluster is deleted next: nothing to restore")
		}
		sc.Command("# put kube-apiserver's original flags back")
		if err := rc.RestoreAPIServer(ctx); err != nil {
			return err
		}
		sc.run.flagsChanged = false
		sc.clusterState(currentArgs(ctx, sc.Backend), true)
		return nil
	}
	if err := sc.mayWrite("change kube-apiserver's flags", nil); err != nil {
		return err
	}
	change, err := f.change(sc)
	if err != nil {
		return err
	}
	if d, ok := sc.Backend.(cluster.ChangeDescriber); ok {
		sc.Command(d.DescribeChange(change))
	}
	sc.run.flagsChanged = true
	if sc.run.destroysCluster() && sc.Backend.Info().Disposable {
		ctx = cluster.WithoutRollbackOnCancel(ctx)
	}
	err = rc.ReconfigureAPIServer(ctx, change)
	sc.clusterState(currentArgs(ctx, sc.Backend), true)
	want := sc.expect()
	var rb *cluster.RollbackError
	switch {
	case errors.As(err, &rb):
		sc.Log("kube-apiserver refused the change and the previous flags were restored; it said: %s", rb.LastError)
		if want == nil || !want.RolledBack {
			return err
		}
		sc.Check(CheckResult{Name: "rolled back", Want: "true", Got: "true", OK: true})
		if want.ErrorContains != "" {
			sc.Check(CheckResult{Name: "kube-apiserver error contains", Want: want.ErrorContains, Got: rb.LastError, OK: strings.Contains(rb.LastError, want.ErrorContains)})
		}
		return nil
	case err != nil:
		return err
	case want != nil && want.RolledBack:
		sc.Check(CheckResult{Name: "rolled back", Want: "true", Got: "false: kube-apiserver serves with the new flags", OK: false})
	}
	return nil
}

// change is the step's change to kube-apiserver, its files read.
func (f *flagsStep) change(sc *StepContext) (cluster.APIServerChange, error) {
	change := cluster.APIServerChange{Set: f.Set, Remove: f.Remove, Files: map[string][]byte{}, Sources: f.Files}
	for name, manifest := range f.Files {
		data, err := readManifest(sc.run.scenario, manifest)
		if err != nil {
			return change, err
		}
		change.Files[name] = data
	}
	return change, nil
}
