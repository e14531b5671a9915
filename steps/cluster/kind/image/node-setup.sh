#!/usr/bin/env bash
# Runs inside the node image's build container (build.sh), after kind's
# base-image files were copied to /: the setup steps of kind's
# images/base/Dockerfile, adapted to Debian's containerd, runc and CNI
# plugins, plus what kind's node-image builder writes (/kind/version, the
# manifests). Arguments: the Kubernetes version, the pause image kubeadm
# expects.
set -euo pipefail
version=$1 pause=$2

# Modes as kind's Dockerfile sets them: scripts 0755, the rest 0644.
chmod 0644 /etc/crictl.yaml /etc/containerd/config.toml /etc/default/kubelet /etc/sysctl.d/*.conf \
	/etc/systemd/system/*.service /etc/systemd/system/kubelet.slice /etc/systemd/system/kubelet.service.d/*
chmod -R a+rX,go-w /kind /LICENSES
chmod 0755 /kind /kind/bin /kind/bin/* /usr/local/bin/*

# kind's unit files and scripts expect its own builds in /usr/local and
# /opt/cni/bin; Debian's packages put them in /usr.
ln -sf /usr/bin/containerd /usr/local/bin/containerd
ln -sf /usr/bin/containerd-shim-runc-v2 /usr/local/bin/containerd-shim-runc-v2
ln -sf /usr/bin/ctr /usr/local/bin/ctr
mkdir -p /opt/cni
rm -rf /opt/cni/bin
ln -s /usr/lib/cni /opt/cni/bin

find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
	/lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
	/lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >>/etc/systemd/journald.conf
ln -sf /usr/lib/systemd/systemd /sbin/init
systemctl enable kubelet.service containerd.service undo-mount-hacks.service 2>/dev/null
systemctl mask systemd-binfmt.service 2>/dev/null
mkdir -p /etc/kubernetes/manifests

# containerd: the sandbox image is the pause image built for kubeadm, and
# pods may not lower their oom_score_adj below containerd's own: on hosts
# whose capability bounding set lacks CAP_SYS_RESOURCE (see docker.sh) the
# kubelet's -998 for critical pods fails otherwise.
sed -i -e "s|^\([[:space:]]*sandbox_image = \).*|\1\"$pause\"|" \
	-e 's|^\([[:space:]]*restrict_oom_score_adj = \).*|\1true|' /etc/containerd/config.toml

# Networking: kind's default CNI, kindnetd, is built from sources that are
# neither in the kind module nor on the module proxy. A static bridge
# configuration serves a single-node cluster (kind's default podSubnet),
# and kind's CNI manifest is a placeholder for kind to apply.
mkdir -p /etc/cni/net.d
cat >/etc/cni/net.d/10-anonlab-bridge.conflist <<'EOF'
{
  "cniVersion": "0.4.0",
  "name": "anonlab-bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.0.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

# What kind's node-image builder writes besides the images.
mkdir -p /kind/manifests
echo "$version" >/kind/version
cat >/kind/manifests/default-cni.yaml <<'EOF'
# kind applies this in place of kindnetd: pod networking is the static
# bridge configuration in /etc/cni/net.d of the node image.
apiVersion: v1
kind: ConfigMap
metadata:
  name: anonlab-cni
  namespace: kube-system
data:
  cni: /etc/cni/net.d/10-anonlab-bridge.conflist (bridge, host-local 10.244.0.0/24, portmap)
EOF
cat >/kind/manifests/default-storage.yaml <<'EOF'
# kind's legacy default StorageClass: the image has no storage provisioner.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
EOF
