package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/anonlab/anonlab/steps/cluster/staticpod"
)

// ServingAPIServer implements cluster.ServingAPIServerReader, for a
// manifest a person edits: args are the flags of the kube-apiserver
// container that runs the manifest as it is now and answers /readyz 200
// (nil while the kubelet still runs the one started before the edit, which
// goes on answering until it is stopped). startError is the last error
// line of the newest container started from the manifest as it is now that
// exited with an error after the running one started, or says why the
// manifest cannot be read as a Pod. While the kubelet swaps containers a
// look may tell nothing (nil, "", nil): the caller looks again.
func (b *Backend) ServingAPIServer(ctx context.Context) (args []string, startError string, err error) {
	if b.node == nil {
		return nil, "", errors.New("read the serving kube-apiserver: the cluster is not running")
	}
	// One command in the node, not three: each costs a `docker exec`.
	out, err := b.nodeOutput(ctx, nil, "sh", "-c", servingScript, "sh", manifestPath)
	if err != nil {
		if strings.Contains(err.Error(), "code = NotFound") {
			// The kubelet removed a container between crictl's listing and
			// its inspection, as it does while it swaps them.
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("read the kube-apiserver manifest and containers in the node: %w", err)
	}
	manifest, inspect, _ := bytes.Cut(out, []byte{0})
	cs, err := parseInspect(inspect)
	if err != nil {
		return nil, "", err
	}
	want, err := staticpod.Flags(manifest)
	if err != nil {
		return nil, fmt.Sprintf("the kubelet cannot run %s: %v", manifestPath, err), nil
	}
	run, exited := newestRunAndExit(cs)
	if exited != nil && exited.ExitCode != 0 && slices.Equal(exited.Flags, want) {
		startError = b.lastAPIServerError(ctx, exited.ID)
	}
	if run == nil || !slices.Equal(run.Flags, want) {
		return nil, startError, nil
	}
	// A new connection answers from the container that runs now: the one
	// it replaced no longer listens once the new one runs.
	code, err := b.get(ctx, "/readyz")
	if err != nil || code != http.StatusOK {
		return nil, startError, nil // starting: the next look will tell
	}
	return want, startError, nil
}

// servingScript prints the manifest ($1), a NUL, and what crictl knows of
// the kube-apiserver containers (nothing when there is none: crictl
// inspect with no id would inspect every container).
const servingScript = `cat "$1" && printf '\0' && ids=$(crictl ps --all --quiet --name '^kube-apiserver$') && if [ -n "$ids" ]; then crictl inspect --output json $ids; fi`

// newestRunAndExit is the newest running container, and the newest exited
// one created after it (any exited one when none runs).
func newestRunAndExit(cs []inspected) (run, exited *inspected) {
	for i := range cs {
		c := &cs[i]
		if c.State == runningState && (run == nil || c.Created.After(run.Created)) {
			run = c
		}
	}
	for i := range cs {
		c := &cs[i]
		if c.State == exitedState && (run == nil || c.Created.After(run.Created)) && (exited == nil || c.Created.After(exited.Created)) {
			exited = c
		}
	}
	return run, exited
}

// inspected is a kube-apiserver container as `crictl inspect` tells of it:
// the flags it was started with, and how it ended.
type inspected struct {
	ID       string
	State    string
	Created  time.Time
	ExitCode int
	Flags    []string
}

// parseInspect reads `crictl inspect --output json`: nothing for no
// container, one object for one, a list of them for several.
func parseInspect(out []byte) ([]inspected, error) {
	type status struct {
		Status struct {
			ID        string    `json:"id"`
			State     string    `json:"state"`
			CreatedAt time.Time `json:"createdAt"`
			ExitCode  int       `json:"exitCode"`
		} `json:"status"`
		Info struct {
			Config struct {
				Command []string `json:"command"`
				Args    []string `json:"args"`
			} `json:"config"`
		} `json:"info"`
	}
	var list []status
	switch trimmed := bytes.TrimSpace(out); {
	case len(trimmed) == 0:
		return nil, nil
	case trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, fmt.Errorf("read crictl inspect: %w", err)
		}
	default:
		var one status
		if err := json.Unmarshal(trimmed, &one); err != nil {
			return nil, fmt.Errorf("read crictl inspect: %w", err)
		}
		list = append(list, one)
	}
	var cs []inspected
	for _, s := range list {
		cmd := slices.Concat(s.Info.Config.Command, s.Info.Config.Args)
		if s.Status.ID == "" || len(cmd) == 0 {
			return nil, fmt.Errorf("read crictl inspect: a container with no id or command (%q, %q)", s.Status.ID, cmd)
		}
		cs = append(cs, inspected{ID: s.Status.ID, State: s.Status.State, Created: s.Status.CreatedAt, ExitCode: s.Status.ExitCode, Flags: cmd[1:]})
	}
	return cs, nil
}
