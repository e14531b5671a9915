# shellcheck shell=bash
# Shared by docker.sh and build.sh: messages on stderr, packages from apt.
# The sourcing script sets prefix, the name its messages start with.
: "${prefix:?}"

log() { echo "$prefix: $*" >&2; }
fail() {
	echo "$prefix: $*" >&2
	exit 1
}

# apt_install installs Debian packages, fetching the package lists first
# when a fresh machine has none.
apt_install() {
	[[ $(id -u) == 0 ]] || fail "$* missing and not running as root: install $* (Debian: apt-get install $*) and run again"
	command -v apt-get >/dev/null || fail "$* missing and no apt-get here: install $* by hand"
	log "installing $*"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; then
		apt-get update -qq >&2
		apt-get install -y --no-install-recommends "$@" >&2
	fi
}
