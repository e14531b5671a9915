package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/anonlab/anonlab/steps/cluster"
)

// Runtime is the container engine kind's nodes run on.
type Runtime struct {
	// Name is the engine's command: docker or podman.
	Name string
	// Version is the engine's version as it reports it.
	Version string
	// CgroupVersion is the host's cgroup version as the engine sees it:
	// 1 or 2.
	CgroupVersion int
}

// Detect returns the first engine that answers, Docker then Podman, as
// kind's own detection orders them; kind only checks that the command
// exists, the lab asks the engine itself.
func Detect(ctx context.Context) (Runtime, error) {
	var errs []error
	for _, name := range []string{"docker", "podman"} {
		rt, err := probe(ctx, name)
		if err == nil {
			return rt, nil
		}
		errs = append(errs, err)
	}
	return Runtime{}, fmt.Errorf("%w: neither Docker nor Podman answers (%v); `make docker` sets Docker up on Debian", cluster.ErrNotAvailable, errors.Join(errs...))
}

func probe(ctx context.Context, name string) (Runtime, error) {
	if _, err := exec.LookPath(name); err != nil {
		return Runtime{}, fmt.Errorf("%s: not installed", name)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := run(ctx, name, "info", "--format", "json")
	if err != nil {
		return Runtime{}, err
	}
	rt := Runtime{Name: name}
	if name == "podman" {
		rt.Version, rt.CgroupVersion, err = parsePodmanInfo(out)
	} else {
		rt.Version, rt.CgroupVersion, err = parseDockerInfo(out)
	}
	return rt, err
}

// parseDockerInfo reads `docker info --format json`: CgroupVersion is "1"
// or "2" (Docker 20.10 and later). A daemon that does not answer still
// prints a JSON object, with ServerErrors.
func parseDockerInfo(out []byte) (version string, cgroup int, err error) {
	var info struct {
		ServerVersion string
		CgroupVersion string
		ServerErrors  []string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return "", 0, fmt.Errorf("docker info: %w", err)
	}
	if len(info.ServerErrors) > 0 {
		return "", 0, fmt.Errorf("docker: %s", strings.Join(info.ServerErrors, "; "))
	}
	cgroup, err = strconv.Atoi(info.CgroupVersion)
	if err != nil {
		return "", 0, fmt.Errorf("docker info: cgroup version %q", info.CgroupVersion)
	}
	return info.ServerVersion, cgroup, nil
}

// parsePodmanInfo reads `podman info --format json`: host.cgroupVersion
// is "v1" or "v2".
func parsePodmanInfo(out []byte) (version string, cgroup int, err error) {
	var info struct {
		Host struct {
			CgroupVersion string `json:"cgroupVersion"`
		} `json:"host"`
		Version struct {
			Version string `json:"Version"`
		} `json:"version"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return "", 0, fmt.Errorf("podman info: %w", err)
	}
	cgroup, err = strconv.Atoi(strings.TrimPrefix(info.Host.CgroupVersion, "v"))
	if err != nil {
		return "", 0, fmt.Errorf("podman info: cgroup version %q", info.Host.CgroupVersion)
	}
	return info.Version.Version, cgroup, nil
}

// providerOption is kind's provider for this engine.
func (r Runtime) providerOption() kindcluster.ProviderOption {
	if r.Name == "podman" {
		return kindcluster.ProviderWithPodman()
	}
	return kindcluster.ProviderWithDocker()
}

// HasImage reports whether image is in the engine's local store, so that
// kind will not try to pull it.
func (r Runtime) HasImage(ctx context.Context, image string) bool {
	_, err := run(ctx, r.Name, "image", "inspect", image)
	return err == nil
}

// pull asks the engine to pull image, as kind would.
func (r Runtime) pull(ctx context.Context, image string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	_, err := run(ctx, r.Name, "pull", image)
	return err
}

// NodeImageFor is the node image for a Kubernetes version when none is
// asked for: the one `make kind-node-image` built for it when the engine
// has it, else kind's default.
func (r Runtime) NodeImageFor(ctx context.Context, version string) string {
	if r.HasImage(ctx, LabNodeImage(version)) {
		return LabNodeImage(version)
	}
	return DefaultNodeImage
}

// SaveImage writes image to w as `docker save` does: one tar that
// LoadImage reads back on another machine.
func (r Runtime) SaveImage(ctx context.Context, image string, w io.Writer) error {
	return stream(ctx, nil, w, r.Name, "save", image)
}

// LoadImage loads into the engine the images of a tar that SaveImage wrote.
func (r Runtime) LoadImage(ctx context.Context, rd io.Reader) error {
	return stream(ctx, rd, io.Discard, r.Name, "load")
}

// imageKubernetesVersion is the Kubernetes version of a kind node image:
// the /kind/version file kind's image builders write.
func (r Runtime) imageKubernetesVersion(ctx context.Context, image string) (string, error) {
	out, err := run(ctx, r.Name, "run", "--rm", "--entrypoint", "cat", image, "/kind/version")
	if err != nil {
		return "", fmt.Errorf("read the Kubernetes version of %s: %w", image, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// run runs an engine command; the error keeps the command's last line.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLine(stderr.String()))
	}
	return out, nil
}

// stream runs an engine command with stdin and stdout given; the error
// keeps the command's last line.
func stream(ctx context.Context, in io.Reader, out io.Writer, name string, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLine(stderr.String()))
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
