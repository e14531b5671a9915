#!/usr/bin/env bash
# Draws the README's screenshot from a real walkthrough: anonlab tui on the
# local backend in tmux at 160x50, a pressed, the step with the 401
# selected once every step has run, the screen captured with its colours,
# turned into HTML by aha and into a PNG by a headless chromium.
#
#   docs/screenshot.sh bin/anonlab docs/tui.png
#
# Needs tmux, aha, chromium and fonts-dejavu-core (Debian packages; as root
# on Debian they are installed when missing).
set -euo pipefail

bin=${1:?usage: $0 ANONLAB OUT.png}
out=${2:?usage: $0 ANONLAB OUT.png}
cols=160
rows=50

need=()
for tool in tmux aha chromium; do
	command -v "$tool" >/dev/null || need+=("$tool")
done
[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ]] || need+=(fonts-dejavu-core)
if ((${#need[@]})); then
	if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
		apt-get install -y --no-install-recommends "${need[@]}"
	else
		echo "screenshot: missing ${need[*]}: apt-get install -y ${need[*]}" >&2
		exit 1
	fi
fi

work=$(mktemp -d)
# A tmux server of its own: nothing of the user's tmux is touched.
tmx() { tmux -L "anonlab-screenshot-$$" -f /dev/null "$@"; }
trap 'tmx kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

# The screen as tmux holds it now.
screen() { tmx capture-pane -p -t shot "$@"; }

# wait_for PATTERN SECONDS polls the screen until an extended regexp
# matches.
wait_for() {
	local deadline=$((SECONDS + $2))
	until screen | grep -qE -- "$1"; do
		if ((SECONDS >= deadline)); then
			echo "screenshot: no /$1/ on the screen after $2 s:" >&2
			screen >&2
			exit 1
		fi
		sleep 0.2
	done
}

tmx new-session -d -s shot -x "$cols" -y "$rows" \
	"env COLORTERM=truecolor $bin tui anonymous-auth --backend local --lang en; sleep 60"
wait_for 'Press enter to run step 1' 30
tmx send-keys -t shot a
wait_for 'Finished: ' 300
# k until the detail shows the anonymous GET /api that answers 401.
for _ in $(seq 30); do
	screen | grep -qE 'Step [0-9]+ of [0-9]+ · GET /api anonymously → 401' && break
	tmx send-keys -t shot k
	sleep 0.1
done
wait_for 'Step [0-9]+ of [0-9]+ · GET /api anonymously → 401' 5
# aha draws the bright colours (90-97, or 8-15 of 256) too bright: they go
# to their 256-colour numbers, and those to xterm's RGB.
rgb=(127,127,127 255,0,0 0,255,0 255,255,0 92,92,255 255,0,255 0,255,255 255,255,255)
bright=() palette=()
for i in "${!rgb[@]}"; do
	bright+=(-e "s/([[;])9$i([;m])/\\138;5;$((i + 8))\\2/g")
	palette+=(-e "s/38;5;$((i + 8))([;m])/38;2;${rgb[$i]//,/;}\\1/g")
done
# Twice: neighbouring codes share their ";".
screen -e | sed -E "${bright[@]}" | sed -E "${bright[@]}" | sed -E "${palette[@]}" >"$work/screen.ansi"
tmx send-keys -t shot q
wait_for 'cleaned up' 120

{
	cat <<-EOF
		<!DOCTYPE html><html><head><meta charset="utf-8"><style>
		body { margin: 0; background: #1e1e1e; color: #d0d0d0; }
		pre { margin: 12px; font: 14px/17px "DejaVu Sans Mono", monospace; }
		</style></head><body><pre>
	EOF
	aha --no-header <"$work/screen.ansi"
	echo '</pre></body></html>'
} >"$work/screen.html"

# 14px DejaVu Sans Mono is 8.43px wide; 17px a line; 12px of margin.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
	--window-size="$((cols * 843 / 100 + 24)),$((rows * 17 + 24))" \
	--screenshot="$work/tui.png" "file://$work/screen.html" 2>/dev/null
mv "$work/tui.png" "$out"
echo "$out"
