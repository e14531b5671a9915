package app

import (
	"bytes"
	"testing"

	"github.com/anonlab/anonlab/steps"
)

// TestProgressOnStderr: a source build's progress, as anonlab run gets it
// from the engine, says on stderr how far the build is; later reports of
// the same phase wait 5 seconds unless the phase ends.
func TestProgressOnStderr(t *testing.T) {
	var out, errb bytes.Buffer
	sink := progressSink(IOStreams{Out: &out, Err: &errb})
	sink.Emit(steps.Progress{Step: "create-cluster", Phase: "build", Detail: "build kube-apiserver: k8s.io/apiserver/pkg/server",
		ElapsedMS: 95300, Count: 812, Total: 2143, LeftMS: 367000})
	sink.Emit(steps.Progress{Step: "create-cluster", Phase: "build", Detail: "build kube-apiserver: k8s.io/apiserver/pkg/endpoints",
		ElapsedMS: 95400, Count: 813, Total: 2143, LeftMS: 366000})
	sink.Emit(steps.Progress{Step: "create-cluster", Phase: "build", Detail: "kube-apiserver and etcd built into /cache/v1.37.2",
		ElapsedMS: 500000, Count: 2143, Total: 2143, Done: true})
	want := "… build (1m35.3s) 812/2143 packages (37%), about 6m10s left: build kube-apiserver: k8s.io/apiserver/pkg/server\n" +
		"… build (8m20s) 2143/2143 packages (100%): kube-apiserver and etcd built into /cache/v1.37.2\n"
	if got := errb.String(); got != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
	}
	if out.Len() != 0 {
		t.Errorf("progress went to stdout: %q", out.String())
	}
}
