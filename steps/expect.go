package steps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/client-go/util/jsonpath"
)

// Expect is what a step's HTTP response must look like. Every field set is
// one check.
type Expect struct {
	// Status is the HTTP status code.
	Status int `yaml:"status"`
	// Reason is the reason of a Status body ("Forbidden").
	Reason string `yaml:"reason"`
	// Message is the exact message of a Status body.
	Message string `yaml:"message"`
	// MessageContains is a part of the message of a Status body.
	MessageContains string `yaml:"messageContains"`
	// JSONPath checks values in the body.
	JSONPath []JSONPathExpect `yaml:"jsonpath"`
	// RolledBack expects a flag change that kube-apiserver refuses: the lab
	// puts the previous flags back (apiserverFlags steps only).
	RolledBack bool `yaml:"rolledBack"`
	// ErrorContains is a part of kube-apiserver's own error line when it
	// refused a flag change (with rolledBack).
	ErrorContains string `yaml:"errorContains"`
	// Kubernetes is the versions the expectation holds for (see Versions).
	Kubernetes string `yaml:"kubernetes"`
	versions   Versions
}

// JSONPathExpect checks the value at a JSONPath (kubectl's syntax, e.g.
// {.items[*].metadata.name}); multiple results are joined by spaces.
type JSONPathExpect struct {
	Path     string  `yaml:"path"`
	Equals   *string `yaml:"equals"`
	Contains *string `yaml:"contains"`
}

type fieldError struct{ field, msg string }

// fieldErrorf is an error at one of the expectation's fields.
func fieldErrorf(field, format string, args ...any) *fieldError {
	return &fieldError{field, fmt.Sprintf(format, args...)}
}

// validate checks the expectation for a step of kind: response fields need
// a kind that responds, rolledBack and errorContains one that changes
// kube-apiserver's flags (only that kind checks them).
func (e *Expect) validate(kind string, responds, changesFlags bool) *fieldError {
	var err error
	if e.versions, err = parseVersions(e.Kubernetes); err != nil {
		return fieldErrorf("kubernetes", "%v", err)
	}
	if !responds {
		for _, f := range []struct {
			name string
			set  bool
		}{{"status", e.Status != 0}, {"reason", e.Reason != ""}, {"message", e.Message != ""}, {"messageContains", e.MessageContains != ""}, {"jsonpath", len(e.JSONPath) > 0}} {
			if f.set {
				return &fieldError{f.name, fmt.Sprintf("a %s step has no HTTP response to match", kind)}
			}
		}
	}
	if !changesFlags {
		if e.RolledBack {
			return &fieldError{"rolledBack", fmt.Sprintf("a %s step changes no kube-apiserver flags: only apiserverFlags steps can be rolled back", kind)}
		}
		if e.ErrorContains != "" {
			return &fieldError{"errorContains", fmt.Sprintf("a %s step changes no kube-apiserver flags: only apiserverFlags steps see kube-apiserver's error", kind)}
		}
	}
	if e.Status != 0 && (e.Status < 100 || e.Status > 599) {
		return &fieldError{"status", fmt.Sprintf("%d is not an HTTP status code", e.Status)}
	}
	if e.ErrorContains != "" && !e.RolledBack {
		return &fieldError{"errorContains", "only with rolledBack: true"}
	}
	if e.Status == 0 && e.Reason == "" && e.Message == "" && e.MessageContains == "" && len(e.JSONPath) == 0 && !e.RolledBack {
		var fields []string
		if responds {
			fields = append(fields, "status", "reason", "message", "messageContains", "jsonpath")
		}
		if changesFlags {
			fields = append(fields, "rolledBack")
		}
		if len(fields) == 0 {
			return &fieldError{"", fmt.Sprintf("a %s step takes no expectations", kind)}
		}
		return &fieldError{"", "empty: give at least one of " + strings.Join(fields, ", ")}
	}
	for i, jp := range e.JSONPath {
		f := fmt.Sprintf("jsonpath[%d]", i)
		if jp.Path == "" {
			return &fieldError{f + ".path", "required"}
		}
		if _, err := parseJSONPath(jp.Path); err != nil {
			return &fieldError{f + ".path", err.Error()}
		}
		if (jp.Equals == nil) == (jp.Contains == nil) {
			return &fieldError{f, "give exactly one of equals, contains"}
		}
	}
	return nil
}

func parseJSONPath(expr string) (*jsonpath.JSONPath, error) {
	jp := jsonpath.New("expect").AllowMissingKeys(false)
	if err := jp.Parse(expr); err != nil {
		return nil, fmt.Errorf("invalid JSONPath %q: %w", expr, err)
	}
	return jp, nil
}

// CheckResult is the outcome of one expectation.
type CheckResult struct {
	Name string
	Want string
	Got  string
	OK   bool
}

// Match evaluates the response expectations against a response.
func (e *Expect) Match(r *Response) []CheckResult {
	var out []CheckResult
	if e.Status != 0 {
		out = append(out, CheckResult{"status", strconv.Itoa(e.Status), strconv.Itoa(r.Status), e.Status == r.Status})
	}
	if e.Reason != "" {
		out = append(out, CheckResult{"reason", e.Reason, r.Reason, e.Reason == r.Reason})
	}
	if e.Message != "" {
		out = append(out, CheckResult{"message", e.Message, r.Message, e.Message == r.Message})
	}
	if e.MessageContains != "" {
		out = append(out, CheckResult{"message contains", e.MessageContains, r.Message, strings.Contains(r.Message, e.MessageContains)})
	}
	for _, jp := range e.JSONPath {
		got, err := EvalJSONPath(jp.Path, r.Body)
		if err != nil {
			got = "error: " + err.Error()
		}
		switch {
		case jp.Equals != nil:
			out = append(out, CheckResult{"jsonpath " + jp.Path, *jp.Equals, got, err == nil && got == *jp.Equals})
		default:
			out = append(out, CheckResult{"jsonpath " + jp.Path + " contains", *jp.Contains, got, err == nil && strings.Contains(got, *jp.Contains)})
		}
	}
	return out
}

// EvalJSONPath evaluates a kubectl-style JSONPath against a JSON body.
func EvalJSONPath(expr string, body []byte) (string, error) {
	jp, err := parseJSONPath(expr)
	if err != nil {
		return "", err
	}
	var data any
	if err := json.Unmarshal(body, &data); err != nil {
		return "", fmt.Errorf("body is not JSON: %w", err)
	}
	var buf bytes.Buffer
	if err := jp.Execute(&buf, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}
