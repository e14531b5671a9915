// Package audit reads kube-apiserver's audit log (audit.k8s.io/v1 events,
// one JSON object a line): it decodes each request into an Observation,
// follows the log as it is written, finds the observation of a given
// request, and explains in words why it got its status.
package audit

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// Observation is one request as kube-apiserver's audit log records it.
type Observation struct {
	// Time is when kube-apiserver received the request.
	Time    time.Time
	AuditID string
	// User is empty when authentication failed (a 401).
	User   string
	Groups []string
	// Verb is the Kubernetes verb (get, list, create, …); for a path that
	// is no resource, the lower-case HTTP method.
	Verb string
	// Path is the request's path, without the query; RequestURI is the
	// request line's target as logged.
	Path, RequestURI string
	// Resource, Subresource, Namespace, Name and APIGroup are the object
	// the request is about ("" for a path that is no resource, and
	// APIGroup "" for the core group).
	Resource, Subresource, Namespace, Name, APIGroup string
	Code                                             int
	// StatusReason and Message are the Status reason (Forbidden,
	// Unauthorized, …) and message, empty on success.
	StatusReason, Message string
	// Decision is "allow" or "forbid" (authorization.k8s.io/decision),
	// empty when the request did not reach authorization; AuthzReason is
	// the authorizer's own reason (authorization.k8s.io/reason).
	Decision, AuthzReason string
	UserAgent             string
}

// Authorization decisions as kube-apiserver annotates them.
const (
	Allow  = "allow"
	Forbid = "forbid"
)

// Authenticated reports whether kube-apiserver authenticated the request
// (as a user, anonymous included).
func (o Observation) Authenticated() bool { return o.User != "" }

// event holds the fields of an audit.k8s.io/v1 Event the lab reads
// (k8s.io/apiserver, which has the full type, is no dependency).
type event struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	User       struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	UserAgent string `json:"userAgent"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code    int    `json:"code"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp time.Time         `json:"requestReceivedTimestamp"`
	Annotations              map[string]string `json:"annotations"`
}

const eventAPIVersion = "audit.k8s.io/v1"

// Decode reads one audit log line. ok is false for an event that is not
// the one observation of its request: a request is logged at several
// stages, and only the last is kept (ResponseComplete, or Panic). A failed
// authentication is the exception: it is logged once, at ResponseStarted,
// with no user.
func Decode(line []byte) (o Observation, ok bool, err error) {
	var ev event
	if err := json.Unmarshal(line, &ev); err != nil {
		return Observation{}, false, fmt.Errorf("decode audit event: %w", err)
	}
	if ev.APIVersion != eventAPIVersion || ev.Kind != "Event" {
		return Observation{}, false, fmt.Errorf("decode audit event: %s %s is no %s Event", ev.APIVersion, ev.Kind, eventAPIVersion)
	}
	switch ev.Stage {
	case "ResponseComplete", "Panic":
	case "ResponseStarted":
		if ev.User.Username != "" {
			return Observation{}, false, nil // a long-running request; ResponseComplete follows
		}
	default:
		return Observation{}, false, nil
	}
	o = Observation{
		Time:        ev.RequestReceivedTimestamp,
		AuditID:     ev.AuditID,
		User:        ev.User.Username,
		Groups:      ev.User.Groups,
		Verb:        ev.Verb,
		Path:        ev.RequestURI,
		RequestURI:  ev.RequestURI,
		UserAgent:   ev.UserAgent,
		Decision:    ev.Annotations["authorization.k8s.io/decision"],
		AuthzReason: ev.Annotations["authorization.k8s.io/reason"],
	}
	if u, err := url.ParseRequestURI(ev.RequestURI); err == nil {
		o.Path = u.Path
	}
	if r := ev.ObjectRef; r != nil {
		o.Resource, o.Subresource, o.Namespace, o.Name, o.APIGroup = r.Resource, r.Subresource, r.Namespace, r.Name, r.APIGroup
	}
	if s := ev.ResponseStatus; s != nil {
		o.Code, o.StatusReason, o.Message = s.Code, s.Reason, s.Message
	}
	return o, true, nil
}
