package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// kube-apiserver's /readyz waits for its two bootstrap post-start hooks,
// rbac/bootstrap-roles (default RBAC: ClusterRoles, bindings, Roles) and
// scheduling/bootstrap-system-priority-classes. Each makes its first
// attempt only after wait.Poll's 1 s interval
// (pkg/registry/rbac/rest/storage_rbac.go,
// pkg/registry/scheduling/rest/storage_scheduling.go), so every start is
// ready a second after kube-apiserver could answer. On a restart the hooks
// reconcile objects a kube-apiserver already made: when none of them
// changed since one last finished, and the new one's flags give the same
// default policy (policyFlags), they change nothing, and the new
// kube-apiserver answers every request as it will once they have run. The
// kubelet then waits for /readyz without those two checks. When one changed
// (a default binding edited: the hook puts a removed subject back unless
// its autoupdate annotation is "false"), it waits for them, so the lab
// shows what kube-apiserver does after a restart.

const (
	readyz = "/readyz"
	// readyzBootstrapped is readyz without the two bootstrap hooks.
	readyzBootstrapped = readyz + "?exclude=poststarthook/rbac/bootstrap-roles&exclude=poststarthook/scheduling/bootstrap-system-priority-classes"
	// rbacDefaults labels every object of kube-apiserver's default RBAC.
	rbacDefaults = "kubernetes.io/bootstrapping=rbac-defaults"
)

// policyFlags are the kube-apiserver flags the bootstrap hooks depend on:
// feature gates (and the emulated version, which sets their defaults)
// decide which default roles exist, the authorizers whether RBAC's hook
// runs at all.
var policyFlags = []string{"--feature-gates", "--emulated-version", "--authorization-mode", "--authorization-config"}

// policy is args' policyFlags, as given, one per line: bootstrap hooks
// started with other values may have work to do however their objects are.
func policy(args []string) string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(args[i], "=")
		if !slices.Contains(policyFlags, name) {
			continue
		}
		out = append(out, args[i])
		if !hasValue && i+1 < len(args) {
			i++
			out[len(out)-1] += " " + args[i]
		}
	}
	return strings.Join(out, "\n")
}

// readyName is how progress names a readiness check.
func readyName(path string) string {
	if path == readyzBootstrapped {
		return readyz + " (all but the bootstrap hooks: they have nothing to change)"
	}
	return path
}

// bootstrapLists are the lists that hold what the two hooks make.
var bootstrapLists = []string{
	"/apis/rbac.authorization.k8s.io/v1/clusterroles?labelSelector=" + url.QueryEscape(rbacDefaults),
	"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?labelSelector=" + url.QueryEscape(rbacDefaults),
	"/apis/rbac.authorization.k8s.io/v1/roles?labelSelector=" + url.QueryEscape(rbacDefaults),
	"/apis/rbac.authorization.k8s.io/v1/rolebindings?labelSelector=" + url.QueryEscape(rbacDefaults),
	"/apis/scheduling.k8s.io/v1/priorityclasses",
}

// systemPriorityClasses are what scheduling/bootstrap-system-priority-classes makes.
var systemPriorityClasses = []string{"system-cluster-critical", "system-node-critical"}

// bootstrapState reads, as the admin, the objects the two hooks own: each
// one's path and resourceVersion, one per line, sorted. Equal states mean
// no one changed, made or deleted any of them in between. "" when the
// default RBAC or a system priority class is missing: the hooks have work
// to do (a kube-apiserver without RBAC authorization made none).
func (b *Backend) bootstrapState(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lists := make([][]objectMeta, len(bootstrapLists))
	errs := make([]error, len(bootstrapLists))
	var wg sync.WaitGroup
	for i, path := range bootstrapLists {
		wg.Go(func() { lists[i], errs[i] = b.listMeta(ctx, path) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	var lines []string
	rbac, priority := 0, 0
	for i, path := range bootstrapLists {
		for _, m := range lists[i] {
			if strings.Contains(path, "/priorityclasses") {
				if !slices.Contains(systemPriorityClasses, m.Name) {
					continue
				}
				priority++
			} else {
				rbac++
			}
			lines = append(lines, fmt.Sprintf("%s %s/%s %s", path, m.Namespace, m.Name, m.ResourceVersion))
		}
	}
	if rbac == 0 || priority < len(systemPriorityClasses) {
		return "", nil
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n"), nil
}

type objectMeta struct {
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	ResourceVersion string `json:"resourceVersion"`
}

// listMeta lists path and returns its items' metadata, asking for nothing
// more (PartialObjectMetadataList: the default ClusterRoles' rules are
// most of their size).
func (b *Backend) listMeta(ctx context.Context, path string) ([]objectMeta, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.Host+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	var list struct {
		Items []struct {
			Metadata objectMeta `json:"metadata"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	metas := make([]objectMeta, len(list.Items))
	for i, it := range list.Items {
		metas[i] = it.Metadata
	}
	return metas, nil
}
