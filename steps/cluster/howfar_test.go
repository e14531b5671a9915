package cluster

import (
	"testing"
	"time"
)

func TestHowFar(t *testing.T) {
	cases := []struct {
		Name string
		P    Progress
		Want string
	}{
		{"not counted", Progress{Phase: "wait"}, ""},
		{"no estimate yet", Progress{Count: 12, Total: 2143}, "12/2143 packages (0%)"},
		{"minutes left", Progress{Count: 812, Total: 2143, Left: 6*time.Minute + 7*time.Second}, "812/2143 packages (37%), about 6m10s left"},
		{"seconds left", Progress{Count: 2100, Total: 2143, Left: 4200 * time.Millisecond}, "2100/2143 packages (97%), about 4s left"},
		{"done", Progress{Count: 2143, Total: 2143}, "2143/2143 packages (100%)"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			if got := tc.P.HowFar(); got != tc.Want {
				t.Errorf("HowFar() = %q, want %q", got, tc.Want)
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	p := Progress{Phase: "build", Detail: "build kube-apiserver: k8s.io/kubernetes/pkg/controlplane", Elapsed: 95321 * time.Millisecond,
		Count: 812, Total: 2143, Left: 367 * time.Second}
	if got, want := p.Line(), "build (1m35.3s) 812/2143 packages (37%), about 6m10s left: build kube-apiserver: k8s.io/kubernetes/pkg/controlplane"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
	p = Progress{Phase: "wait", Detail: "polling /readyz", Elapsed: 120 * time.Millisecond}
	if got, want := p.Line(), "wait (100ms): polling /readyz"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
}
