#!/usr/bin/env bash
# `make docker`: makes a Docker engine reachable for the kind backend on a
# fresh machine of the project's kind (Debian, root, maybe no systemd, maybe
# a VM whose capability bounding set lacks a capability). It installs
# docker.io when Docker is missing and we are root, starts dockerd when it
# does not answer, and registers a runc wrapper only when a privileged
# container fails for lack of a capability. Idempotent: where Docker already
# works it only checks. Progress goes to stderr; exit 1 says why it failed.
set -euo pipefail
prefix=docker
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

readonly wrapper=/usr/local/sbin/anonlab-runc
readonly probe=anonlab/probe:tini
readonly dockerd_log=/var/log/anonlab-dockerd.log

answers() { docker info >/dev/null 2>&1; }

start_dockerd() {
	if [[ -d /run/systemd/system ]]; then
		log "starting docker.service"
		systemctl start docker.service >&2
	else
		# No init system to ask: run dockerd in a session of its own so that
		# it outlives this script.
		log "starting dockerd (log: $dockerd_log)"
		setsid nohup dockerd >>"$dockerd_log" 2>&1 </dev/null &
	fi
	for _ in $(seq 1 120); do
		answers && return 0
		sleep 0.5
	done
	fail "dockerd did not answer within 60 s; its log ($dockerd_log) ends with: $(tail -n 5 "$dockerd_log" 2>/dev/null)"
}

# A one-file image with Docker's own static init (tini): something that can
# run in a container without a registry.
probe_image() {
	docker image inspect "$probe" >/dev/null 2>&1 && return 0
	local init
	init=$(command -v docker-init || ls /usr/libexec/docker/docker-init 2>/dev/null || true)
	[[ -n $init ]] || fail "cannot find docker-init to build a probe image"
	local dir
	dir=$(mktemp -d)
	cp "$(readlink -f "$init")" "$dir/init"
	tar -C "$dir" -c init | docker import --change 'ENTRYPOINT ["/init"]' - "$probe" >/dev/null
	rm -rf "$dir"
}

# Capability names by number (linux/capability.h), to name what the
# bounding set lacks.
readonly caps=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
	LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
	SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
	SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
	MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
	CHECKPOINT_RESTORE)

missing_caps() {
	local bnd
	bnd=$((16#$(awk '/^CapBnd:/ {print $2}' /proc/self/status)))
	local i out=()
	for i in "${!caps[@]}"; do
		((bnd >> i & 1)) || out+=("\"CAP_${caps[$i]}\"")
	done
	local IFS=,
	echo "[${out[*]}]"
}

install_wrapper() {
	local drop real
	drop=$(missing_caps)
	real=$(command -v runc) || fail "runc not found"
	command -v jq >/dev/null || apt_install jq
	log "this host's capability bounding set lacks $drop, which Docker grants privileged containers (kind's nodes are privileged); registering $wrapper, which drops them and runs $real"
	mkdir -p "$(dirname "$wrapper")"
	cat >"$wrapper" <<EOF
#!/bin/sh
# Installed by anonlab's \`make docker\`. This host's capability bounding set
# lacks $drop, yet Docker grants every capability it knows to privileged
# containers, and runc then fails with "unable to apply caps". Drop those from
# the OCI spec (create/run: the bundle's config.json; exec: --process), then
# run the real runc.
drop='$drop'
strip() {
	jq --argjson drop "\$drop" '
		def keep: with_entries(.value |= map(select(IN(\$drop[]) | not)));
		if .process.capabilities then .process.capabilities |= keep
		elif .capabilities then .capabilities |= keep else . end' "\$1" >"\$1.anonlab" &&
		mv "\$1.anonlab" "\$1"
}
cmd= bundle=. process= prev=
for a in "\$@"; do
	case \$prev in --bundle | -b) bundle=\$a ;; --process | -p) process=\$a ;; esac
	case \$a in
	--bundle=*) bundle=\${a#*=} ;;
	--process=*) process=\${a#*=} ;;
	create | run | exec) [ -n "\$cmd" ] || cmd=\$a ;;
	esac
	prev=\$a
done
case \$cmd in
create | run) strip "\$bundle/config.json" ;;
exec) [ -z "\$process" ] || strip "\$process" ;;
esac
exec $real "\$@"
EOF
	chmod 0755 "$wrapper"
	mkdir -p /etc/docker
	local cfg=/etc/docker/daemon.json
	[[ -s $cfg ]] || echo '{}' >"$cfg"
	jq --arg path "$wrapper" '.runtimes["anonlab-runc"] = {path: $path} | .["default-runtime"] = "anonlab-runc"' "$cfg" >"$cfg.anonlab"
	mv "$cfg.anonlab" "$cfg"
	# dockerd reloads its runtimes on SIGHUP: no restart, containers keep running.
	if [[ -d /run/systemd/system ]] && systemctl is-active -q docker.service; then
		systemctl reload docker.service
	else
		pkill -HUP -x dockerd
	fi
	for _ in $(seq 1 20); do
		[[ $(docker info --format '{{.DefaultRuntime}}' 2>/dev/null) == anonlab-runc ]] && return 0
		sleep 0.5
	done
	fail "dockerd did not take $cfg's default runtime anonlab-runc"
}

privileged_ok() { docker run --rm --privileged "$probe" --version >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null && ! answers; then
	apt_install docker.io
fi
answers || start_dockerd
probe_image
if ! privileged_ok; then
	said=$(docker run --rm --privileged "$probe" --version 2>&1 || true)
	case $said in
	*"unable to apply caps"*) install_wrapper ;;
	*) fail "a privileged container does not run: $said" ;;
	esac
	privileged_ok || fail "a privileged container still does not run: $(docker run --rm --privileged "$probe" --version 2>&1 || true)"
fi
log "ready: $(docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'), privileged containers run"
