#!/usr/bin/env bash
# The Nix packaging checks that run without nixpkgs, a binary cache or network:
# every .nix file parses, flake.lock is a version 7 lock that matches the inputs
# of flake.nix and pins real-looking revisions, the imports of nix/*.nix pass
# the arguments those files take, and the rust-overlay pin is newer than the
# pinned Rust. The work is done by nix/check_flake.py; this script provides
# nix-instantiate.
#
# Outside Nix, a missing nix-instantiate is installed from Debian (nix-bin).
# With MYCELIUM_IN_NIX=1 (the `nix` flake check, `nix develop`) nothing is
# installed: the tools must already be on PATH.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
in_nix="${MYCELIUM_IN_NIX:-0}"

fail() {
  echo "test-nix: error: $*" >&2
  exit 1
}

install_nix_instantiate() {
  # nix: unreachable
  if [ "$in_nix" = 1 ]; then
    fail "nix-instantiate is not on PATH; with MYCELIUM_IN_NIX=1 it must come from the derivation's inputs (pkgs.nix)"
  fi
  command -v apt-get >/dev/null ||
    fail "nix-instantiate is not on PATH and apt-get is not available; install Nix (docs/nix.md)"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "installing nix-bin needs root or sudo"
    sudo=(sudo)
  fi
  echo "test-nix: installing Debian's nix-bin for nix-instantiate"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >/dev/null
}

command -v nix-instantiate >/dev/null || install_nix_instantiate
command -v python3 >/dev/null || fail "python3 is not on PATH"

if [ "$in_nix" = 1 ]; then
  # The build sandbox has no /nix/var/nix and no writable HOME; the checker only
  # parses and evaluates pure expressions against a dummy store, but Nix still
  # wants somewhere to put its state and cache.
  scratch="${TMPDIR:-/tmp}/test-nix-state"
  mkdir -p "$scratch"
  export NIX_STATE_DIR="$scratch/state" NIX_LOG_DIR="$scratch/log" XDG_CACHE_HOME="$scratch/cache"
fi

echo "test-nix: $(nix-instantiate --version), $(python3 --version)"
# The clock is read here, never inside the derivation (whose result must not depend on the day
# it was built): in Nix the "lastModified is not in the future" bound is left out.
now_arg=()
if [ "$in_nix" != 1 ]; then now_arg=(--now "$(date +%s)"); fi
python3 "$repo/nix/check_flake.py" --repo "$repo" "${now_arg[@]}"

# The sandbox simulation (nix/sandbox_sim.py, docs/nix.md): every flake check's build command
# run as its derivation would run it, with only its inputs, no network, no .git, no HOME. It
# needs root (mount and network namespaces) and the host's tools, so never inside Nix.
# MYCELIUM_NIX_SIM=static runs only its parse check; =0 skips it (say why when you do).
if [ "$in_nix" = 1 ]; then
  echo "test-nix: the sandbox simulation runs outside Nix only (it stands in for this very sandbox)"
  exit 0
fi
case "${MYCELIUM_NIX_SIM:-1}" in
  0) echo "test-nix: MYCELIUM_NIX_SIM=0: sandbox simulation skipped"; exit 0 ;;
  static) exec python3 "$repo/nix/sandbox_sim.py" --repo "$repo" --static-only ;;
esac
[ "$(id -u)" -eq 0 ] || fail "the sandbox simulation needs root (unshare -m -n, overlay mounts); run as root or set MYCELIUM_NIX_SIM=static"
command -v unshare >/dev/null || fail "the sandbox simulation needs unshare (util-linux)"
# Its store is made from what the other suites built: the venv (maturin, pytest, mypy) and the
# cargo target dir. Run alone, the venv is made here; cargo builds what is missing, offline.
if [ ! -x "$repo/.venv/bin/maturin" ]; then
  # shellcheck source=lib.sh
  source "$repo/scripts/lib.sh"
  ensure_venv
fi
# MYCELIUM_NIX_SIM_SKIP=a,b leaves suites out of the sandbox runs (not out of the parse check):
# each suite runs in full in the sandbox, so a long one costs CI its whole time again.
python3 "$repo/nix/sandbox_sim.py" --repo "$repo" --skip "${MYCELIUM_NIX_SIM_SKIP:-}"
