package kind

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// inspectOf is `crictl inspect --output json` of one container, with the
// fields the lab reads (crictl prints many more).
func inspectOf(id, state, created string, exitCode int, command ...string) string {
	return `{"info":{"config":{"command":["` + strings.Join(command, `","`) + `"]}},"status":{"id":"` + id + `","state":"` + state +
		`","createdAt":"` + created + `","exitCode":` + strconv.Itoa(exitCode) + `}}`
}

func TestParseInspect(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	running := inspectOf("5255e7", runningState, "2026-12-02T15:53:32.81442106Z", 0, "kube-apiserver", "--anonymous-auth=false", "--secure-port=6443")
	failed := inspectOf("c438a5", exitedState, "2026-12-02T15:57:53.716682228Z", 1, "kube-apiserver", "--no-such-flag=1")
	cases := []struct {
		Name string
		Out  string
		Want []inspected
		Err  string
	}{
		{Name: "no container", Out: "\n"},
		{Name: "one: an object", Out: running, Want: []inspected{
			{ID: "5255e7", State: runningState, Created: at("2026-12-02T15:53:32.81442106Z"), Flags: []string{"--anonymous-auth=false", "--secure-port=6443"}},
		}},
		{Name: "several: a list", Out: "[\n" + running + ",\n" + failed + "\n]\n", Want: []inspected{
			{ID: "5255e7", State: runningState, Created: at("2026-12-02T15:53:32.81442106Z"), Flags: []string{"--anonymous-auth=false", "--secure-port=6443"}},
			{ID: "c438a5", State: exitedState, Created: at("2026-12-02T15:57:53.716682228Z"), ExitCode: 1, Flags: []string{"--no-such-flag=1"}},
		}},
		{Name: "args after the command", Out: `{"info":{"config":{"command":["kube-apiserver","--a=1"],"args":["--b=2"]}},"status":{"id":"1","state":"CONTAINER_RUNNING","createdAt":"2026-12-02T15:53:32Z"}}`, Want: []inspected{
			{ID: "1", State: runningState, Created: at("2026-12-02T15:53:32Z"), Flags: []string{"--a=1", "--b=2"}},
		}},
		{Name: "no command", Out: `{"info":{"config":{}},"status":{"id":"1"}}`, Err: "no id or command"},
		{Name: "not JSON", Out: "FATA[0000] no such container", Err: "read crictl inspect"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			got, err := parseInspect([]byte(tc.Out))
			if tc.Err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.Err) {
					t.Fatalf("parseInspect = %+v, %v; want an error with %q", got, err, tc.Err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.Want) {
				t.Errorf("parseInspect = %+v, %v\nwant %+v", got, err, tc.Want)
			}
		})
	}
}

func TestNewestRunAndExit(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	c := func(id, state string, minute int) inspected {
		return inspected{ID: id, State: state, Created: t0.Add(time.Duration(minute) * time.Minute)}
	}
	cases := []struct {
		Name            string
		Containers      []inspected
		WantRun, WantEx string
	}{
		{Name: "none"},
		{Name: "one running", Containers: []inspected{c("a", runningState, 1)}, WantRun: "a"},
		{Name: "the newest of those that run", Containers: []inspected{c("b", runningState, 2), c("a", runningState, 1)}, WantRun: "b"},
		{Name: "an exit before the running one is past", Containers: []inspected{c("old", exitedState, 1), c("a", runningState, 2)}, WantRun: "a"},
		{Name: "an exit after the running one started", Containers: []inspected{c("a", runningState, 1), c("x", exitedState, 2), c("y", exitedState, 3)}, WantRun: "a", WantEx: "y"},
		{Name: "none runs: the newest exit", Containers: []inspected{c("y", exitedState, 3), c("x", exitedState, 2), c("z", "CONTAINER_CREATED", 4)}, WantEx: "y"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			run, exited := newestRunAndExit(tc.Containers)
			id := func(c *inspected) string {
				if c == nil {
					return ""
				}
				return c.ID
			}
			if id(run) != tc.WantRun || id(exited) != tc.WantEx {
				t.Errorf("newestRunAndExit = %q, %q; want %q, %q", id(run), id(exited), tc.WantRun, tc.WantEx)
			}
		})
	}
}
