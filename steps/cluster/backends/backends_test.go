package backends

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster/local"
)

func TestPickWithoutContainerEngine(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // neither docker nor podman
	o := Options{}
	name, why := Pick(context.Background(), Auto, &o)
	if name != local.Name || !strings.Contains(why, "neither Docker nor Podman answers") || !strings.Contains(why, "make docker") {
		t.Errorf("Pick = %q, %q; want local, saying why and how to get Docker", name, why)
	}
	if name, why := Pick(context.Background(), "kind", &o); name != "kind" || why != "" {
		t.Errorf("Pick(kind) = %q, %q; want kind as asked", name, why)
	}
}

func TestNodeImage(t *testing.T) {
	t.Setenv("ANONLAB_NODE_IMAGE", "anonlab/node:v1.37.2")
	if got := NodeImage(""); got != "anonlab/node:v1.37.2" {
		t.Errorf("NodeImage from the environment = %q", got)
	}
	if got := NodeImage("kindest/node:v1.37.0"); got != "kindest/node:v1.37.0" {
		t.Errorf("NodeImage from the flag = %q", got)
	}
}

func TestPickWithoutRegistry(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\ncase \"$1\" in info) echo '{\"ServerVersion\":\"20.10.24\",\"CgroupVersion\":\"2\"}';; *) echo \"no registry: $*\" >&2; exit 1;; esac\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	o := Options{}
	name, why := Pick(context.Background(), Auto, &o)
	if name != local.Name || !strings.Contains(why, "is not there") || !strings.Contains(why, "make kind-node-image") {
		t.Errorf("Pick = %q, %q; want local, naming make kind-node-image", name, why)
	}
}
