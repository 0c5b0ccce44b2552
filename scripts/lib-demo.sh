# The demo's Python and OCaml parts: shared by demo.sh (the main job) and test-demo.sh (its
# end-to-end test). Sourced after lib.sh, not run.

# ensure_demo_tools: installs what building the parts needs (Debian packages, the venv).
ensure_demo_tools() {
  ensure_rust
  ensure_venv
  ensure_ocaml
  # libpython3-dev: the demo binary links libpython (PyO3); binutils: objcopy for the OCaml
  # object (rust/mycelium-ocaml-guest); gcc: the C compiler dune and cargo link with.
  ensure_apt libpython3-dev binutils gcc
}

# build_demo_parts PROFILE: builds mycelium_native into the venv (in Nix: uses the flake's) (the Python strategy imports
# it) and the OCaml risk engine's object (ocaml/demo/risk.exe.o, linked into the demo binary
# by its build script). PROFILE (dev or release) is the cargo profile of the OCaml stubs.
build_demo_parts() {
  local profile="$1"
  install_python_extension
  step "OCaml: the risk engine object (dune build ./demo/risk.exe.o, stubs in cargo profile $profile)"
  (cd "$MYCELIUM_ROOT/ocaml" && MYCELIUM_CARGO_PROFILE="$profile" dune build ./demo/risk.exe.o)
}

# run_demo_over_nats BIN ARG...: the demo in two processes joined over NATS (README, "The demo
# over NATS"): a nats-server on a free loopback port, `BIN --part risk` serving RiskCheck
# there, then `BIN --part front` (market, strategy, book) with the ARGs, whose requests cross
# NATS. The risk process is stopped (SIGTERM) when the front is done and prints what it
# answered, on stderr. Fails if either process does; everything it started is stopped.
run_demo_over_nats() {
  local bin="$1"
  shift
  local arg
  for arg in "$@"; do
    case "$arg" in
      --part|--part=*|--nats|--nats=*) die "--over-nats chooses --part and --nats itself; give neither" ;;
    esac
  done
  ensure_apt nats-server >&2
  local port url dir nats_bin
  port=$(free_port)
  url="nats://127.0.0.1:$port"
  dir=$(mktemp -d)
  nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  "$nats_bin" -a 127.0.0.1 -p "$port" >"$dir/nats.log" 2>&1 &
  _demo_nats_pid=$!
  _demo_risk_pid=""
  _demo_dir="$dir"
  trap '[ -z "$_demo_risk_pid" ] || kill "$_demo_risk_pid" 2>/dev/null; kill "$_demo_nats_pid" 2>/dev/null; rm -rf "$_demo_dir"' EXIT
  wait_port "$port"
  step "over NATS ($url): the risk process (--part risk), then the front (--part front)" >&2
  "$bin" --part risk --nats "$url" "$@" >"$dir/risk.log" 2>&1 &
  _demo_risk_pid=$!
  local _
  for _ in $(seq 1 600); do
    grep -q '^ready:' "$dir/risk.log" && break
    kill -0 "$_demo_risk_pid" 2>/dev/null || { cat "$dir/risk.log" >&2; die "the risk process ended before it was ready"; }
    sleep 0.1
  done
  grep -q '^ready:' "$dir/risk.log" || { cat "$dir/risk.log" >&2; die "the risk process was not ready after 60 s"; }
  local front=0 risk=0
  "$bin" --part front --nats "$url" "$@" || front=$?
  kill -TERM "$_demo_risk_pid"
  wait "$_demo_risk_pid" || risk=$?
  _demo_risk_pid=""
  sed 's/^/risk process: /' "$dir/risk.log" >&2
  [ "$front" = 0 ] || die "the front process failed (exit $front)"
  [ "$risk" = 0 ] || die "the risk process failed or did not reconcile (exit $risk)"
}
