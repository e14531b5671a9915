// Package roompack writes and reads a room pack: one tar.gz with the
// local backend's binaries for a Kubernetes version (and optionally the
// kind node image, as `docker save` writes it), plus a manifest with the
// SHA-256 of each file, so that a training room with no internet installs
// what one machine built (anonlab pack / anonlab unpack).
//
// The manifest comes last in the archive: it is written once every file's
// sum is known. Read verifies every file against it before anything is
// installed.
package roompack

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"golang.org/x/mod/semver"

	"github.com/anonlab/anonlab/steps/cluster/binaries"
)

// Format names this layout in the manifest.
const Format = "anonlab-room-pack/v1"

// Names of the entries in a pack.
const (
	ManifestName = "manifest.json"
	ImageName    = imageDir + "node.tar"
	binPrefix    = "bin/"
	imageDir     = "image/"
)

// binaryNames are the executables a pack may hold; the first two it must.
var binaryNames = []string{binaries.KubeAPIServer, binaries.Etcd, binaries.Kubectl}

// Manifest describes a pack.
type Manifest struct {
	Format string `json:"format"`
	// Lab is the version of the anonlab that made the pack.
	Lab               string `json:"lab"`
	KubernetesVersion string `json:"kubernetesVersion"`
	// Platform is GOOS/GOARCH of the binaries.
	Platform string `json:"platform"`
	// NodeImage is the tag of the node image in ImageName, if any.
	NodeImage string `json:"nodeImage,omitempty"`
	Files     []File `json:"files"`
}

// File is one file of a pack.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Platform is this machine's GOOS/GOARCH, as a manifest records it.
func Platform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// Contents is what Write puts into a pack.
type Contents struct {
	Lab, KubernetesVersion string
	// BinariesDir holds kube-apiserver and etcd (and kubectl, if there).
	BinariesDir string
	// NodeImage, if set, is saved through SaveImage into the pack.
	NodeImage string
	SaveImage func(ctx context.Context, image string, w io.Writer) error
}

// Write writes a pack of c to path. Nothing is left at path unless the
// whole pack was written.
func Write(ctx context.Context, path string, c Contents) (Manifest, error) {
	m := Manifest{Format: Format, Lab: c.Lab, KubernetesVersion: c.KubernetesVersion, Platform: Platform(), NodeImage: c.NodeImage}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return m, fmt.Errorf("write room pack: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	// Fastest: kube-apiserver compresses to 37 MB instead of 33 MB, in
	// 7 s instead of 17 s on 2 cores; a node image is ten times larger.
	zw, _ := gzip.NewWriterLevel(tmp, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	add := func(name, file string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		sum := sha256.New()
		if _, err := io.Copy(tw, io.TeeReader(f, sum)); err != nil {
			return fmt.Errorf("add %s: %w", file, err)
		}
		m.Files = append(m.Files, File{Name: name, Size: fi.Size(), SHA256: hex.EncodeToString(sum.Sum(nil))})
		return nil
	}
	for _, name := range binaryNames {
		file := filepath.Join(c.BinariesDir, name)
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) && name == binaries.Kubectl {
			continue
		}
		if err := add(binPrefix+name, file); err != nil {
			return m, fmt.Errorf("write room pack: %w", err)
		}
	}
	if c.NodeImage != "" {
		if err := addImage(ctx, c, filepath.Dir(path), add); err != nil {
			return m, fmt.Errorf("write room pack: %w", err)
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	data = append(data, '\n')
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return m, err
	}
	if _, err := tw.Write(data); err != nil {
		return m, err
	}
	if err := errors.Join(tw.Close(), zw.Close(), tmp.Close()); err != nil {
		return m, fmt.Errorf("write room pack: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return m, fmt.Errorf("write room pack: %w", err)
	}
	return m, nil
}

// addImage saves the node image into a scratch file beside the pack (a
// tar entry needs its size first) and adds it.
func addImage(ctx context.Context, c Contents, dir string, add func(name, file string) error) error {
	f, err := os.CreateTemp(dir, ".node-image-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = c.SaveImage(ctx, c.NodeImage, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save node image %s: %w", c.NodeImage, err)
	}
	return add(ImageName, f.Name())
}

// ChecksumError is a file of a pack whose content is not what its
// manifest says.
type ChecksumError struct {
	Pack, File string
	Want, Got  string // sha256, hex
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("room pack %s: %s has sha256 %s, its manifest says sha256 %s: refused, nothing installed", e.Pack, e.File, e.Got, e.Want)
}

// refused is an error about a pack's layout or manifest.
func refused(pack, format string, args ...any) error {
	return fmt.Errorf("room pack %s: %s: refused, nothing installed", pack, fmt.Sprintf(format, args...))
}

// Read reads the pack at path into dir, which it creates: bin/ with the
// binaries, ImageName if the pack has one. It refuses, and leaves dir
// empty, a pack whose files are not all what its manifest says, that holds
// anything but the names above (so no path leads out of dir), or whose
// manifest is not for this layout.
func Read(ctx context.Context, path, dir string) (Manifest, error) {
	var m Manifest
	f, err := os.Open(path)
	if err != nil {
		return m, fmt.Errorf("read room pack: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return m, err
	}
	m, err = read(ctx, path, f, dir)
	if err != nil {
		_ = os.RemoveAll(filepath.Join(dir, "bin"))
		_ = os.RemoveAll(filepath.Join(dir, filepath.Dir(ImageName)))
		return Manifest{}, err
	}
	return m, nil
}

func read(ctx context.Context, path string, r io.Reader, dir string) (Manifest, error) {
	var m Manifest
	zr, err := gzip.NewReader(r)
	if err != nil {
		return m, refused(path, "not a tar.gz: %v", err)
	}
	got := map[string]File{}
	var manifest []byte
	tr := tar.NewReader(zr)
	for {
		if err := ctx.Err(); err != nil {
			return m, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, refused(path, "%v", err)
		}
		if h.Typeflag == tar.TypeDir && (h.Name == binPrefix || h.Name == imageDir) {
			continue // tar adds them when a pack is made again by hand
		}
		if !allowed(h.Name) {
			return m, refused(path, "it holds %q, which is none of %s, bin/{%s} and %s", h.Name, ManifestName, "kube-apiserver,etcd,kubectl", ImageName)
		}
		if h.Typeflag != tar.TypeReg {
			return m, refused(path, "%s is not a regular file", h.Name)
		}
		if _, dup := got[h.Name]; dup || (h.Name == ManifestName && manifest != nil) {
			return m, refused(path, "it holds %s twice", h.Name)
		}
		if h.Name == ManifestName {
			if manifest, err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
				return m, refused(path, "%s: %v", h.Name, err)
			}
			continue
		}
		file, err := extract(tr, filepath.Join(dir, filepath.FromSlash(h.Name)))
		if err != nil {
			return m, refused(path, "%s: %v", h.Name, err)
		}
		file.Name = h.Name
		got[h.Name] = file
	}
	if manifest == nil {
		return m, refused(path, "it has no %s", ManifestName)
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return m, refused(path, "%s: %v", ManifestName, err)
	}
	if err := check(m); err != nil {
		return m, refused(path, "%s: %v", ManifestName, err)
	}
	for _, want := range m.Files {
		have, ok := got[want.Name]
		if !ok {
			return m, refused(path, "its manifest lists %s, which it does not hold", want.Name)
		}
		if have.SHA256 != want.SHA256 || have.Size != want.Size {
			return m, &ChecksumError{Pack: path, File: want.Name, Want: want.SHA256, Got: have.SHA256}
		}
		delete(got, want.Name)
	}
	if extra := slices.Sorted(maps.Keys(got)); len(extra) > 0 {
		return m, refused(path, "it holds %s, which its manifest does not list", extra[0])
	}
	return m, nil
}

// allowed says whether name is an entry a pack may hold: a fixed list, so
// that no entry can name a path outside the directory it is read into.
func allowed(name string) bool {
	if name == ManifestName || name == ImageName {
		return true
	}
	for _, b := range binaryNames {
		if name == binPrefix+b {
			return true
		}
	}
	return false
}

// check validates a manifest read from a pack.
func check(m Manifest) error {
	if m.Format != Format {
		return fmt.Errorf("format %q, want %q", m.Format, Format)
	}
	if !semver.IsValid(m.KubernetesVersion) || semver.Major(m.KubernetesVersion) != "v1" {
		return fmt.Errorf("kubernetesVersion %q is not a Kubernetes release", m.KubernetesVersion)
	}
	var names []string
	for _, f := range m.Files {
		if !allowed(f.Name) || f.Name == ManifestName || slices.Contains(names, f.Name) {
			return fmt.Errorf("files: %q listed twice or not a pack file", f.Name)
		}
		names = append(names, f.Name)
	}
	for _, need := range []string{binPrefix + binaries.KubeAPIServer, binPrefix + binaries.Etcd} {
		if !slices.Contains(names, need) {
			return fmt.Errorf("files: no %s", need)
		}
	}
	if (m.NodeImage != "") != slices.Contains(names, ImageName) {
		return fmt.Errorf("nodeImage %q and files disagree on whether %s is there", m.NodeImage, ImageName)
	}
	return nil
}

// extract writes r to file (executable), returning its size and sum.
func extract(r io.Reader, file string) (File, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return File{}, err
	}
	out, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return File{}, err
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, sum), r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return File{Size: n, SHA256: hex.EncodeToString(sum.Sum(nil))}, err
}

// Result is what Unpack did.
type Result struct {
	Manifest Manifest
	// Dir is the cache directory the binaries went into.
	Dir string
	// ImageLoaded is set when the pack's node image was loaded.
	ImageLoaded bool
}

// Unpack reads and verifies the pack at path, then installs its binaries
// into the cache (binaries.Install, with opts) and, if it holds a node
// image and load is not nil, loads the image through load. A pack made for
// another platform is refused.
func Unpack(ctx context.Context, path string, load func(ctx context.Context, r io.Reader) error, opts ...binaries.Option) (Result, error) {
	scratch, err := binaries.ScratchDir(opts...)
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(scratch)
	m, err := Read(ctx, path, scratch)
	if err != nil {
		return Result{}, err
	}
	res := Result{Manifest: m}
	if m.Platform != Platform() {
		return res, refused(path, "its binaries are for %s, this machine is %s", m.Platform, Platform())
	}
	if res.Dir, err = binaries.Install(ctx, m.KubernetesVersion, filepath.Join(scratch, "bin"), opts...); err != nil {
		return res, err
	}
	if m.NodeImage == "" || load == nil {
		return res, nil
	}
	img, err := os.Open(filepath.Join(scratch, filepath.FromSlash(ImageName)))
	if err != nil {
		return res, err
	}
	defer img.Close()
	if err := load(ctx, img); err != nil {
		return res, fmt.Errorf("load node image %s: %w", m.NodeImage, err)
	}
	res.ImageLoaded = true
	return res, nil
}
