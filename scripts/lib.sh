# Shared helpers for the scripts in scripts/. Sourced, not run.
# Every test script installs what it needs itself, so each one also works on its own on a fresh
# Debian machine. Inside the Nix flake's checks MYCELIUM_IN_NIX=1 and tools come from Nix instead.
set -euo pipefail

MYCELIUM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MYCELIUM_ROOT
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> [%ss] %s\n' "$SECONDS" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

in_nix() { [ "${MYCELIUM_IN_NIX:-0}" = 1 ]; }

_apt_updated=0
# ensure_apt PACKAGE... : installs the Debian packages that are missing (needs root, as in CI).
ensure_apt() {
  in_nix && return 0
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ "$_apt_updated" = 0 ]; then
    $sudo apt-get update -qq
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs) first"
  # In Nix the pinned toolchain has rustfmt and clippy, and there is no rustup.
  in_nix && return 0
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
}

# The Python virtualenv used by builds and tests (maturin, pytest, pyzmq for the benchmark).
# In a Nix check there is no venv: python3 on PATH is the pinned interpreter with the test tools,
# and the flake's python-module package (MYCELIUM_PYTHON_SITE = <prefix>/lib/python3.X/
# site-packages, on PYTHONPATH) holds the extension its wheel built. Its prefix has a venv's
# layout, so it stands in for MYCELIUM_VENV where a Rust host looks for site-packages.
# In `nix develop` (MYCELIUM_IN_NIX=1, no MYCELIUM_PYTHON_SITE) the shell's hook makes the venv
# from the pinned interpreter, and the scripts use it as they do without Nix.
nix_wheel() { in_nix && [ -n "${MYCELIUM_PYTHON_SITE:-}" ]; }
if nix_wheel; then
  MYCELIUM_VENV="${MYCELIUM_VENV:-${MYCELIUM_PYTHON_SITE%/lib/python3*/site-packages}}"
fi
MYCELIUM_VENV="${MYCELIUM_VENV:-$MYCELIUM_ROOT/.venv}"
export MYCELIUM_VENV
# The interpreter the tests run: the venv's, or in Nix the one on PATH.
if nix_wheel; then
  MYCELIUM_PY=python3
  # Neither the tests nor the interpreters they start may import the source package
  # python/mycelium_native (no extension in it) from the working directory instead of the wheel's.
  export PYTHONSAFEPATH=1
  # the codegen conformance test runs mypy with it instead of <repo>/.venv/bin/python
  MYCELIUM_MYPY_PYTHON="$(command -v python3 || echo python3)"
  export MYCELIUM_MYPY_PYTHON
else
  MYCELIUM_PY="$MYCELIUM_VENV/bin/python"
fi
ensure_venv() {
  if nix_wheel; then return 0; fi
  if in_nix; then
    [ -x "$MYCELIUM_VENV/bin/python" ] && [ -x "$MYCELIUM_VENV/bin/maturin" ] \
      || die "MYCELIUM_IN_NIX=1 and no venv at $MYCELIUM_VENV: \`nix develop\` makes it (nix/devshell.nix); a check must set MYCELIUM_PYTHON_SITE"
    return 0
  fi
  local py="${MYCELIUM_PYTHON:-python3}"
  if [ ! -x "$MYCELIUM_VENV/bin/python" ]; then
    step "creating the Python venv $MYCELIUM_VENV"
    "$py" -m venv "$MYCELIUM_VENV" || { ensure_apt python3-venv; "$py" -m venv "$MYCELIUM_VENV"; }
  fi
  local want=(maturin==1.* pytest pytest-timeout pyzmq mypy)
  if ! "$MYCELIUM_VENV/bin/python" -c "import pytest, pytest_timeout, zmq, mypy" 2>/dev/null \
    || [ ! -x "$MYCELIUM_VENV/bin/maturin" ]; then
    step "installing Python tools into the venv: ${want[*]}"
    "$MYCELIUM_VENV/bin/python" -m pip install -q --upgrade pip
    "$MYCELIUM_VENV/bin/python" -m pip install -q "${want[@]}"
  fi
}

ensure_ocaml() {
  ensure_apt ocaml-nox ocaml-dune ocaml-findlib libalcotest-ocaml-dev liblwt-ocaml-dev
}

# install_python_extension: puts mycelium_native where the tests import it from. Outside Nix:
# `maturin develop --release` into the venv (release: python/bench measures this build). In
# Nix the extension is the one packages.python-wheel built (MYCELIUM_PYTHON_SITE); building it
# again here would test a different build than the one users get.
install_python_extension() {
  if nix_wheel; then
    [ -n "${MYCELIUM_PYTHON_SITE:-}" ] \
      || die "MYCELIUM_IN_NIX=1 but MYCELIUM_PYTHON_SITE is not set: the check must give the site-packages of packages.python-module (nix/checks.nix)"
    step "mycelium_native from the flake's wheel ($MYCELIUM_PYTHON_SITE)"
    # -P: the source package python/mycelium_native (no extension in it) must not shadow it.
    (cd "$MYCELIUM_ROOT/python" && python3 -P -c 'import mycelium_native, sys; print(mycelium_native.__file__)') \
      || die "mycelium_native does not import from $MYCELIUM_PYTHON_SITE"
    return 0
  fi
  step "maturin develop --release (mycelium_native into $MYCELIUM_VENV)"
  (cd "$MYCELIUM_ROOT/python" && VIRTUAL_ENV="$MYCELIUM_VENV" PATH="$MYCELIUM_VENV/bin:$PATH" \
    "$MYCELIUM_VENV/bin/maturin" develop --release --locked -q)
}

# free_port: prints a TCP port that is free on 127.0.0.1 now (for a server a script starts).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT: waits up to 20 s until something accepts connections on 127.0.0.1:PORT
# (bash's /dev/tcp: no other program needed).
wait_port() {
  local _
  for _ in $(seq 1 400); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  die "nothing listens on 127.0.0.1:$1 after 20 s"
}
