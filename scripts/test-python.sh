#!/usr/bin/env bash
# Python suite: builds the mycelium_native extension (maturin develop --release, into the venv),
# generates the example contracts module, runs the pytest suite (unit, pub/sub, vectors, attach,
# callbacks, stress, lifetimes, Ctrl-C, fork, socket bridges incl. a Rust peer process), checks the type stubs (mypy stubtest + mypy
# --strict), and runs the Rust-host embedding tests against the installed package.
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"
ensure_rust
ensure_venv
# tests/test_nats.py joins runtimes through real NATS servers on loopback ports
ensure_apt nats-server

py="$MYCELIUM_PY"
contracts_dir="$MYCELIUM_ROOT/target/python-contracts"

install_python_extension

step "the extension maturin installed is stripped ([tool.maturin] strip; was 29.8 MB with debug info)"
ensure_apt binutils
ext_dir=python/mycelium_native
if nix_wheel; then ext_dir="$MYCELIUM_PYTHON_SITE/mycelium_native"; fi
for so in "$ext_dir"/_native*.so; do
  if readelf -S "$so" | grep -q '\.debug_'; then die "$so carries debug sections: keep strip = true in python/pyproject.toml"; fi
  printf '%s: %s bytes\n' "$so" "$(stat -c %s "$so")"
done

step "the mycelium CLI as a pip package (python/cli: maturin bin wheel), installed in a scratch venv"
cli_wheels="$MYCELIUM_ROOT/target/wheels-cli"
rm -rf "$cli_wheels" "$MYCELIUM_ROOT/target/cli-venv"
# The dev profile is already built by the Rust suite; a release wheel is built the same way.
if nix_wheel; then
  # maturin is on PATH; a venv from the Nix interpreter would be a second interpreter to trust,
  # so the wheel goes into a plain prefix with the same bin/ layout.
  (cd python/cli && maturin build --profile dev --locked --offline -q -o "$cli_wheels")
  PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install -q --no-index --no-deps --no-cache-dir \
    --prefix "$MYCELIUM_ROOT/target/cli-venv" "$cli_wheels"/mycelium_cli-*.whl
else
  (cd python/cli && VIRTUAL_ENV="$MYCELIUM_VENV" PATH="$MYCELIUM_VENV/bin:$PATH" \
    "$MYCELIUM_VENV/bin/maturin" build --profile dev --locked -q -o "$cli_wheels")
  "$py" -m venv "$MYCELIUM_ROOT/target/cli-venv"
  "$MYCELIUM_ROOT/target/cli-venv/bin/python" -m pip install -q --no-index "$cli_wheels"/mycelium_cli-*.whl
fi
"$MYCELIUM_ROOT/target/cli-venv/bin/mycelium" --version
"$MYCELIUM_ROOT/target/cli-venv/bin/mycelium" check contracts.yaml | grep -q '^ok: ' \
  || die "the pip-installed mycelium did not check contracts.yaml"

step "generating the contracts module (mycelium codegen --lang python)"
mkdir -p "$contracts_dir"
cargo run -q -p mycelium-codegen -- codegen --lang python --schema contracts.yaml \
  --out "$contracts_dir/contracts.py"

step "codegen conformance: generated Python vs the golden vectors and the Rust decoder (+ mypy --strict)"
bash tests/conformance/run_python.sh

step "the mycelium CLI (the Rust peer of the cross-process bridge test)"
# tests/test_bridge_process.py runs `$MYCELIUM_CLI bridge ...` as a separate process and fails,
# never skips, when it is missing.
cargo build -q -p mycelium-codegen --bin mycelium
MYCELIUM_CLI="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/mycelium"
export MYCELIUM_CLI

step "pytest python/tests"
# pytest exits 5 when it collected no test, which fails this script like any other failure.
# -P: in Nix, python/mycelium_native (the sources, no extension) must not shadow the installed one.
(cd python && MYCELIUM_CONTRACTS_DIR="$contracts_dir" "$py" -P -m pytest -q -p no:cacheprovider tests)

step "stub check: mypy.stubtest mycelium_native, mypy --strict on the package"
"$py" -m mypy.stubtest mycelium_native
(cd python && "$py" -m mypy --strict --no-incremental mycelium_native)

step "embedding: a Rust host runs the installed mycelium_native in-process (ignored tests, run here)"
MYCELIUM_VENV="$MYCELIUM_VENV" cargo test -p mycelium-embed-python --test embed -- --ignored

step "samples examples/python/{pubsub,pull_and_asyncio,topics,bridge,request_reply}.py (each exits non-zero unless it received what it published)"
for sample in pubsub.py pull_and_asyncio.py topics.py bridge.py request_reply.py; do
  PYTHONPATH="$contracts_dir${PYTHONPATH:+:$PYTHONPATH}" "$py" "examples/python/$sample"
done

step "sample examples/python/nats.py against a nats-server on a free loopback port"
nats_port=$(free_port)
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
"$nats_bin" -a 127.0.0.1 -p "$nats_port" >/dev/null 2>&1 &
nats_pid=$!
trap 'kill "$nats_pid" 2>/dev/null || true' EXIT
wait_port "$nats_port"
PYTHONPATH="$contracts_dir${PYTHONPATH:+:$PYTHONPATH}" "$py" examples/python/nats.py "nats://127.0.0.1:$nats_port"
kill "$nats_pid" 2>/dev/null || true
trap - EXIT

step "README.md's Python snippet (scripts/readme_snippet.py python)"
readme_py="$MYCELIUM_ROOT/target/readme.py"
python3 scripts/readme_snippet.py python > "$readme_py"
out=$(PYTHONPATH="$contracts_dir${PYTHONPATH:+:$PYTHONPATH}" "$py" "$readme_py")
printf '%s\n' "$out"
grep -q '^callback got BTC-USD' <<<"$out" && grep -q '^asyncio got BTC-USD' <<<"$out" \
  || die "the README's Python snippet did not print what it received"

step "sample: a Rust binary embedding Python (cargo run --example embed_python)"
# The example prints one "python -> ..." line per answered tick; it publishes three.
out=$(MYCELIUM_VENV="$MYCELIUM_VENV" cargo run -q -p mycelium-embed-python --example embed_python)
printf '%s\n' "$out"
[ "$(grep -c '^python -> ' <<<"$out")" -eq 3 ] || die "embed_python: expected 3 answers from Python"
