// Package binariestest serves an envtest-style index and archive on
// 127.0.0.1, the way controller-tools publishes envtest releases, for tests
// of the download: from stub files, or from real binaries when the test
// runs a lab with what it downloaded.
package binariestest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/yaml"
)

// Server serves envtest-releases.yaml and one archive.
type Server struct {
	// IndexURL is the index's address, for ANONLAB_ENVTEST_INDEX.
	IndexURL string
	// Archive is the archive's name (envtest-vX.Y.Z-os-arch.tar.gz) and
	// Sum its SHA-512 as the index lists it, Served that of the bytes
	// served (the same unless Tampered).
	Archive, Sum, Served string
	archives             atomic.Int32
}

// ArchiveRequests is how many times the archive was asked for.
func (s *Server) ArchiveRequests() int { return int(s.archives.Load()) }

// Option changes what the server serves.
type Option func(*config)

type config struct{ tamper, silent bool }

// Tampered serves an archive with one byte changed, listed in the index
// with the checksum of the original.
func Tampered() Option { return func(c *config) { c.tamper = true } }

// SilentArchive lists the archive in the index, but its request never gets
// an answer (until the client gives up).
func SilentArchive() Option { return func(c *config) { c.silent = true } }

// NewServer serves version's envtest archive for this platform, holding
// files (name → content) under controller-tools/envtest/ as the real ones
// do. The index also lists the version for another platform and another
// version, both missing, so that picking the wrong entry fails.
func NewServer(t testing.TB, version string, files map[string][]byte, opts ...Option) *Server {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	archive, err := Archive(files)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(archive)
	if c.tamper {
		archive[len(archive)/2] ^= 0xff
	}
	served := sha512.Sum512(archive)
	s := &Server{Archive: fmt.Sprintf("envtest-%s-%s-%s.tar.gz", version, runtime.GOOS, runtime.GOARCH), Sum: hex.EncodeToString(sum[:]), Served: hex.EncodeToString(served[:])}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	other := "arm64"
	if runtime.GOARCH == other {
		other = "amd64"
	}
	entry := func(name, hash string) map[string]string {
		return map[string]string{"hash": hash, "selfLink": srv.URL + "/download/" + name}
	}
	index, err := yaml.Marshal(map[string]any{"releases": map[string]any{
		version: map[string]any{
			s.Archive: entry(s.Archive, s.Sum),
			fmt.Sprintf("envtest-%s-%s-%s.tar.gz", version, runtime.GOOS, other): entry("missing", strings.Repeat("0", 128)),
		},
		"v1.35.0": map[string]any{
			fmt.Sprintf("envtest-v1.35.0-%s-%s.tar.gz", runtime.GOOS, runtime.GOARCH): entry("missing", strings.Repeat("1", 128)),
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("GET /envtest-releases.yaml", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(index) })
	mux.HandleFunc("GET /download/"+s.Archive, func(w http.ResponseWriter, r *http.Request) {
		s.archives.Add(1)
		if c.silent {
			<-r.Context().Done()
			return
		}
		_, _ = w.Write(archive)
	})
	s.IndexURL = srv.URL + "/envtest-releases.yaml"
	return s
}

// Archive is a gzipped tar holding files under controller-tools/envtest/,
// each executable, as in controller-tools' envtest releases.
func Archive(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	for _, dir := range []string{"controller-tools/", "controller-tools/envtest/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "controller-tools/envtest/" + name, Mode: 0o755, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Stubs are small scripts named kube-apiserver, etcd and kubectl, each
// printing its name.
func Stubs() map[string][]byte {
	files := map[string][]byte{}
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
		files[name] = []byte("#!/bin/sh\necho " + name + "\n")
	}
	return files
}

// FilesIn reads kube-apiserver and etcd (and kubectl when there) from dir.
func FilesIn(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) && name == "kubectl" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	return files
}

// Silent is the URL of an index on 127.0.0.1 that takes connections and
// never answers: a host that cannot be reached, without waiting for a
// route to time out.
func Silent(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return "http://" + l.Addr().String() + "/envtest-releases.yaml"
}
