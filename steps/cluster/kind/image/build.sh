#!/usr/bin/env bash
# `make kind-node-image`: builds a kind node image with no container
# registry, tagged anonlab/node:<Kubernetes version>, and prints that tag as
# its last line on stdout (progress goes to stderr). An image already tagged
# so by the same recipe is reused. It is assembled the way kind's own `kind build node-image`
# does it, from what this machine can reach (Debian's apt mirror and the Go
# module proxy, or local mirrors of them):
#   - the root filesystem: debootstrap of Debian with systemd, containerd,
#     runc and the CNI plugins, from the apt mirror this host uses;
#   - kind's base-image files (entrypoint, systemd units, containerd
#     config), read from the sigs.k8s.io/kind module in the Go module cache;
#   - Kubernetes, etcd, CoreDNS and pause built from their Go module sources
#     (main.go, next to this script), one image each, as kubeadm names them,
#     preloaded into the node's containerd.
# Caches: $XDG_CACHE_HOME/anonlab (binaries, root filesystem tarball).
# Overrides: ANONLAB_DEBIAN_MIRROR, ANONLAB_DEBIAN_SUITE.
set -euo pipefail
prefix="kind-node-image"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
repo=$(cd "$here/../../../.." && pwd)

version=${1:?usage: build.sh KUBERNETES_VERSION}
tag=anonlab/node:$version
# An image built by this same recipe (these files and the Go program
# beside them, this kind module) is reused; one built by an older recipe is
# rebuilt, from the caches.
recipe=$( (
	cat "$here/build.sh" "$here/node-setup.sh"
	for f in "$here"/*.go; do [[ $f == *_test.go ]] || cat "$f"; done
	grep 'sigs.k8s.io/kind ' "$repo/go.mod"
) | sha256sum | cut -c1-12)
built() { [[ $(docker image inspect --format '{{index .Config.Labels "io.anonlab.recipe"}}' "$tag" 2>/dev/null) == "$recipe" ]]; }
if built; then
	log "$tag is already built"
	echo "$tag"
	exit 0
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/anonlab/node-image
mkdir -p "$cache"
# One image build at a time; another may have just built it.
exec 9>"$cache/.lock"
flock 9
if built; then
	log "$tag was built meanwhile"
	echo "$tag"
	exit 0
fi
started=$SECONDS
superseded=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
work=$(mktemp -d)
builder=
cleanup() {
	[[ -z $builder ]] || docker rm -f -v "$builder" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# Host tools: debootstrap for the root filesystem, gcc and a static libc
# for pause, jq for kind's containerd spec.
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v gcc >/dev/null || missing+=(gcc)
[[ -e /usr/lib/x86_64-linux-gnu/libc.a || -e /usr/lib/libc.a ]] || missing+=(libc6-dev)
command -v jq >/dev/null || missing+=(jq)
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

# 1. The root filesystem, cached by suite, mirror and package list.
. /etc/os-release
suite=${ANONLAB_DEBIAN_SUITE:-${VERSION_CODENAME:-bookworm}}
# shellcheck disable=SC2016 # $(SITE) and $(RELEASE) are apt's, not the shell's
mirror=${ANONLAB_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(SITE) $(RELEASE)' 'Created-By: Packages' 2>/dev/null |
	awk -v s="$suite" '$2 == s {print $1; exit}')}
mirror=${mirror:-http://deb.debian.org/debian}
packages=systemd,systemd-sysv,dbus,iptables,iproute2,conntrack,ethtool,kmod,ebtables,socat,ca-certificates,procps,jq,nftables,libseccomp2,pigz,containerd,runc,containernetworking-plugins,util-linux,mount,bash,curl,fuse-overlayfs
key=$(echo "$suite $mirror $packages" | sha256sum | cut -c1-12)
rootfs=$cache/rootfs-$suite-$key.tar
base=anonlab/node-rootfs:$suite-$key
if [[ ! -s $rootfs ]]; then
	log "debootstrap $suite from $mirror (about a minute and a half)"
	debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		fail "debootstrap failed; its log ends with: $(tail -n 5 "$work/debootstrap.log")"
	rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/*
	tar -C "$work/rootfs" --numeric-owner -cf "$rootfs.tmp" .
	mv "$rootfs.tmp" "$rootfs"
	rm -rf "$work/rootfs"
fi
docker image inspect "$base" >/dev/null 2>&1 ||
	docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$rootfs" "$base" >/dev/null

# 2. Binaries, from the Go module sources (minutes the first time).
log "building Kubernetes $version, etcd, CoreDNS and pause from their Go module sources (cached)"
(cd "$repo" && go run ./steps/cluster/kind/image -kubernetes-version "$version") >"$work/files"

# 3. One image per binary kubeadm expects, on the same root filesystem (so
# containerd stores its layer once, and kube-proxy has iptables).
refs=()
while read -r kind ref bin dest; do
	[[ $kind == image ]] || continue
	c=$(docker create --entrypoint "$dest" "$base")
	docker cp "$bin" "$c:$dest"
	docker commit --change "ENTRYPOINT [\"$dest\"]" "$c" "$ref" >/dev/null
	docker rm "$c" >/dev/null
	refs+=("$ref")
done <"$work/files"
docker save "${refs[@]}" >"$work/images.tar"
docker rmi "${refs[@]}" >/dev/null
pause=$(printf '%s\n' "${refs[@]}" | grep /pause:)

# 4. The node: kind's base-image files and setup, the node's commands, and
# the images preloaded into its containerd, then committed.
kind_dir=$(cd "$repo" && go mod download -json sigs.k8s.io/kind | jq -r .Dir)
[[ -d $kind_dir/images/base/files ]] || fail "sigs.k8s.io/kind is not in the Go module cache: run go mod download sigs.k8s.io/kind"
log "assembling $tag"
# --init: an init that reaps the containerd started and stopped below.
builder=$(docker run -d --init --name "anonlab-node-build-$$" --entrypoint sleep --security-opt seccomp=unconfined "$base" infinity)
tar -C "$kind_dir/images/base/files" -c . | docker cp - "$builder:/"
while read -r kind bin _; do
	[[ $kind == node ]] || continue
	docker cp "$bin" "$builder:/usr/bin/"
done <"$work/files"
docker exec -i "$builder" bash -s "$version" "$pause" <"$here/node-setup.sh" >&2
docker exec "$builder" ctr oci spec |
	jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"} | del(.process.rlimits)' >"$work/cri-base.json"
docker cp "$work/cri-base.json" "$builder:/etc/containerd/cri-base.json"

docker exec "$builder" bash -c 'nohup containerd >/dev/null 2>&1 &
	for _ in $(seq 1 50); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done
	echo "containerd did not start" >&2; exit 1'
docker exec -i "$builder" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
	--all-platforms --no-unpack --digests - <"$work/images.tar" >/dev/null
docker exec "$builder" bash -c 'pkill containerd; while pgrep -x containerd >/dev/null; do sleep 0.1; done'

docker commit \
	--change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
	--change 'ENV container=docker' \
	--change "LABEL io.anonlab.kubernetes-version=$version" --change "LABEL io.anonlab.recipe=$recipe" \
	"$builder" "$tag" >/dev/null
# The image of an older recipe goes, unless a container still uses it.
[[ -z $superseded ]] || docker rmi "$superseded" >/dev/null 2>&1 || true
log "$tag built in $((SECONDS - started)) s"
echo "$tag"
