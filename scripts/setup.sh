#!/usr/bin/env bash
# Sets up a fresh clone: QEMU (qemu-system-x86, qemu-utils), npm dependencies, the build.
# With --test it also makes sure the PostgreSQL server binaries the test harness needs exist,
# Debian's chromium for the web console's browser tests, the OpenSSH client (`maqet ssh` runs the
# system ssh; the guest e2e tests log in with it), and tmux (the interactive console's and the
# terminal e2e tests drive the CLI in a tmux pane).
# Installs with apt when run as root; otherwise prints the exact command and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    -h|--help) echo "usage: scripts/setup.sh [--test]"; exit 0 ;;
    *) echo "setup: unknown argument '$arg' (usage: scripts/setup.sh [--test])" >&2; exit 3 ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  say "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
pg_bin=""
if [ "$want_test" = 1 ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then missing+=(postgresql); fi
  # The web console's browser tests drive Debian's chromium (playwright-core, no browser download).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} with apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing packages: ${missing[*]}. Install them as root:" >&2
    say "  $cmd" >&2
    exit 1
  fi
fi
say "QEMU: $(qemu-system-x86_64 --version | head -n 1)"
say "qemu-img: $(qemu-img --version | head -n 1)"

if [ "$want_test" = 1 ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  say "PostgreSQL server binaries: $pg_bin ($("$pg_bin/postgres" --version))"
  say "tmux: $(tmux -V)"
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    say "the test harness runs the server as the 'postgres' user, which does not exist: apt-get install postgresql creates it" >&2
    exit 1
  fi
  say "Chromium (browser tests): $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
fi

# npm ci when the lockfile changed since the last install (or on a fresh clone).
stamp=node_modules/.maqet-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
say "building"
npm run --silent build

# Put `maqet` on PATH: a symlink to the built CLI, in /usr/local/bin as root, else in
# ~/.local/bin (named if that is not on PATH). An existing `maqet` that is not ours is left alone.
bin="$PWD/dist/src/bin/maqet.js"
chmod +x "$bin"
if [ "$(id -u)" = 0 ]; then link_dir=/usr/local/bin; else link_dir="$HOME/.local/bin"; fi
mkdir -p "$link_dir"
link="$link_dir/maqet"
if [ -e "$link" ] && [ ! -L "$link" ]; then
  say "$link exists and is not a symlink; left alone (run $bin directly)" >&2
else
  ln -sfn "$bin" "$link"
  say "maqet -> $link"
  case ":$PATH:" in
    *":$link_dir:"*) ;;
    *) say "$link_dir is not on your PATH: add it (export PATH=\"$link_dir:\$PATH\") to run \`maqet\`" ;;
  esac
fi
say "ready"
