package steps

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/anonlab/anonlab/steps/cluster"
)

// cisStep audits kube-apiserver's flags against the CIS Kubernetes
// Benchmark controls about anonymous access and authorization, the way
// kube-bench does: PASS or FAIL with the remediation. The controls listed
// under expect are checks; the others are reported.
//
//	cisAudit: {expect: {"1.2.1": FAIL, "1.2.8": PASS}}
type cisStep struct {
	Expect map[string]string `yaml:"expect"`
}

// cisControl is one benchmark control judged from the flags.
type cisControl struct {
	id, title, remediation string
	judge                  func(flags map[string]string, authn *authnConfig) (bool, string)
}

// authnConfig is the part of an AuthenticationConfiguration the audit reads.
type authnConfig struct {
	Anonymous *struct {
		Enabled    bool `json:"enabled"`
		Conditions []struct {
			Path string `json:"path"`
		} `json:"conditions"`
	} `json:"anonymous"`
}

var healthPaths = []string{"/livez", "/readyz", "/healthz"}

var cisControls = []cisControl{
	{
		id:    "1.2.1",
		title: "Ensure that the --anonymous-auth argument is set to false",
		remediation: "Edit /etc/kubernetes/manifests/kube-apiserver.yaml on the control-plane node and set --anonymous-auth=false; " +
			"or (Kubernetes ≥ 1.32) pass --authentication-config with an AuthenticationConfiguration whose anonymous.conditions allow only /livez, /readyz and /healthz.",
		judge: func(flags map[string]string, authn *authnConfig) (bool, string) {
			if v, ok := flags["--anonymous-auth"]; ok {
				return v == "false", "--anonymous-auth=" + v
			}
			if authn != nil && authn.Anonymous != nil {
				if !authn.Anonymous.Enabled {
					return true, "AuthenticationConfiguration: anonymous disabled"
				}
				var paths []string
				for _, c := range authn.Anonymous.Conditions {
					paths = append(paths, c.Path)
				}
				if len(paths) == 0 {
					return false, "AuthenticationConfiguration: anonymous enabled on every path"
				}
				for _, p := range paths {
					if !slices.Contains(healthPaths, p) {
						return false, "AuthenticationConfiguration: anonymous allowed on " + p
					}
				}
				return true, "AuthenticationConfiguration: anonymous only on " + strings.Join(paths, ", ")
			}
			return false, "--anonymous-auth is not set (defaults to true)"
		},
	},
	{
		id:          "1.2.6",
		title:       "Ensure that the --authorization-mode argument is not set to AlwaysAllow",
		remediation: "Set --authorization-mode to values other than AlwaysAllow, e.g. --authorization-mode=Node,RBAC.",
		judge: func(flags map[string]string, _ *authnConfig) (bool, string) {
			modes := authorizationModes(flags)
			return !slices.Contains(modes, "AlwaysAllow"), "--authorization-mode=" + strings.Join(modes, ",")
		},
	},
	{
		id:          "1.2.7",
		title:       "Ensure that the --authorization-mode argument includes Node",
		remediation: "Set --authorization-mode to a value that includes Node, e.g. --authorization-mode=Node,RBAC.",
		judge: func(flags map[string]string, _ *authnConfig) (bool, string) {
			modes := authorizationModes(flags)
			return slices.Contains(modes, "Node"), "--authorization-mode=" + strings.Join(modes, ",")
		},
	},
	{
		id:          "1.2.8",
		title:       "Ensure that the --authorization-mode argument includes RBAC",
		remediation: "Set --authorization-mode to a value that includes RBAC, e.g. --authorization-mode=Node,RBAC.",
		judge: func(flags map[string]string, _ *authnConfig) (bool, string) {
			modes := authorizationModes(flags)
			return slices.Contains(modes, "RBAC"), "--authorization-mode=" + strings.Join(modes, ",")
		},
	},
}

// authorizationModes is --authorization-mode's list; kube-apiserver's
// default is AlwaysAllow.
func authorizationModes(flags map[string]string) []string {
	v, ok := flags["--authorization-mode"]
	if !ok {
		return []string{"AlwaysAllow"}
	}
	return strings.Split(v, ",")
}

func (c *cisStep) Validate(v *Validator) error {
	for id, want := range c.Expect {
		if !slices.ContainsFunc(cisControls, func(ctl cisControl) bool { return ctl.id == id }) {
			return v.Errorf("expect."+id, "unknown control (known: 1.2.1, 1.2.6, 1.2.7, 1.2.8)")
		}
		if want != "PASS" && want != "FAIL" {
			return v.Errorf("expect."+id, "%q: want PASS or FAIL", want)
		}
	}
	return nil
}

// cisResult is one control's verdict.
type cisResult struct {
	control cisControl
	pass    bool
	why     string
}

// cisAudit judges every control from kube-apiserver's flags; readFile reads
// the AuthenticationConfiguration the flags name, when there is one.
func cisAudit(args []string, readFile func(string) ([]byte, error)) ([]cisResult, error) {
	flags := map[string]string{}
	for _, a := range args {
		name, value, _ := strings.Cut(a, "=")
		flags[name] = value
	}
	var authn *authnConfig
	if path, ok := flags["--authentication-config"]; ok {
		data, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("read the AuthenticationConfiguration %s: %w", path, err)
		}
		authn = &authnConfig{}
		if err := yaml.Unmarshal(data, authn); err != nil {
			return nil, fmt.Errorf("AuthenticationConfiguration %s: %w", path, err)
		}
	}
	var out []cisResult
	for _, ctl := range cisControls {
		pass, why := ctl.judge(flags, authn)
		out = append(out, cisResult{control: ctl, pass: pass, why: why})
	}
	return out, nil
}

func (c *cisStep) Run(ctx context.Context, sc *StepContext) error {
	rc, ok := sc.Backend.(cluster.APIServerReconfigurer)
	if !ok {
		return Skip(fmt.Sprintf("the %s backend cannot read kube-apiserver's flags", sc.Backend.Name()))
	}
	args, err := rc.APIServerArgs(ctx)
	if err != nil {
		return fmt.Errorf("read kube-apiserver's flags: %w", err)
	}
	readFile := func(string) ([]byte, error) {
		return nil, fmt.Errorf("the %s backend cannot read kube-apiserver's files", sc.Backend.Name())
	}
	if fr, ok := sc.Backend.(cluster.APIServerFileReader); ok {
		readFile = func(path string) ([]byte, error) { return fr.ReadAPIServerFile(ctx, path) }
	}
	results, err := cisAudit(args, readFile)
	if err != nil {
		return err
	}
	if d, ok := sc.Backend.(cluster.FlagsDescriber); ok {
		sc.Command(d.DescribeFlagsRead())
	}
	for _, r := range results {
		verdict := "FAIL"
		if r.pass {
			verdict = "PASS"
		}
		if want, checked := c.Expect[r.control.id]; checked {
			sc.Check(CheckResult{Name: "CIS " + r.control.id + " " + r.control.title, Want: want, Got: verdict + " (" + r.why + ")", OK: want == verdict})
		} else {
			sc.Log("[%s] %s %s (%s)", verdict, r.control.id, r.control.title, r.why)
		}
		if !r.pass {
			sc.Log("remediation for %s: %s", r.control.id, r.control.remediation)
		}
	}
	return nil
}

func (c *cisStep) handout(*Scenario, *Step) []string {
	ids := make([]string, 0, len(c.Expect))
	for id, want := range c.Expect {
		ids = append(ids, id+" "+want)
	}
	sort.Strings(ids)
	return []string{
		`docker exec "$NODE" grep -E -- '--(anonymous-auth|authorization-mode|authentication-config)' "$KUBE_APISERVER_MANIFEST"`,
		"# kube-bench: " + strings.Join(ids, ", "),
	}
}
