#!/usr/bin/env bash
# Every test of the project, in the order a failure is cheapest to see. This is the test command
# named in README.md and run by .ci/run; the Nix flake's checks call the same per-suite scripts.
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"
suites=(rust ffi python ocaml demo nix)
failed=()
start_all=$(date +%s)

# Disk: the whole matrix once built 22 GB under target/ and filled CI's disk (stop 22). One run
# of every suite gains nothing from incremental compilation (3 GB of target/debug/incremental),
# and each suite's scratch builds go as soon as no later suite reads them.
# MYCELIUM_KEEP_SCRATCH=1 keeps them (to look at a failure's build by hand).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export MYCELIUM_PRUNE="${MYCELIUM_PRUNE:-$([ "${MYCELIUM_KEEP_SCRATCH:-0}" = 1 ] && echo 0 || echo 1)}"
disk_report() {
  printf '    disk: %s free; target/ %s\n' "$(df -h --output=avail . | tail -1 | tr -d ' ')" \
    "$(du -sh target 2>/dev/null | cut -f1 || echo 0)"
}
# prune_after SUITE: the scratch directories SUITE made that no later suite or stage uses.
# (target/asan is rebuilt by the hardening stage's stress run; ocaml/_build is hidden from the
# Nix sandbox simulation, which builds its own.)
prune_after() {
  [ "$MYCELIUM_PRUNE" = 1 ] || return 0
  local dirs=()
  case "$1" in
    ffi) dirs=(target/c-tests target/asan) ;;
    python) dirs=(target/cli-venv target/wheels-cli) ;;
    ocaml) dirs=(target/dune-p target/readme-ocaml examples/ocaml/_build) ;;
    demo) dirs=(ocaml/_build) ;;
  esac
  [ ${#dirs[@]} -gt 0 ] && rm -rf "${dirs[@]}"
  disk_report
}
disk_report
for s in "${suites[@]}"; do
  t0=$(date +%s)
  step "suite: $s"
  if bash "scripts/test-$s.sh"; then
    printf '<== suite %s passed in %ss\n' "$s" "$(( $(date +%s) - t0 ))"
  else
    printf '<== suite %s FAILED after %ss\n' "$s" "$(( $(date +%s) - t0 ))"
    failed+=("$s")
  fi
  prune_after "$s"
done
# CI-only stages: not flake checks (they need what no Nix check has: a nightly toolchain and
# cargo-fuzz from crates.io), so they stay out of `suites` and its check against the flake.
ci_only=(hardening)
[ "${MYCELIUM_IN_NIX:-0}" = 1 ] && ci_only=()
if [ ${#ci_only[@]} -gt 0 ]; then
  for s in "${ci_only[@]}"; do
    t0=$(date +%s)
    step "CI-only stage: $s"
    if bash "scripts/test-$s.sh"; then
      printf '<== stage %s passed in %ss\n' "$s" "$(( $(date +%s) - t0 ))"
    else
      printf '<== stage %s FAILED after %ss\n' "$s" "$(( $(date +%s) - t0 ))"
      failed+=("$s")
    fi
    disk_report
  done
fi
all=$(( ${#suites[@]} + ${#ci_only[@]} ))
printf '\nall suites took %ss\n' "$(( $(date +%s) - start_all ))"
printf 'suites: %d passed, %d failed\n' "$(( all - ${#failed[@]} ))" "${#failed[@]}"
[ ${#failed[@]} -eq 0 ] || { echo "failed suites: ${failed[*]}"; exit 1; }
