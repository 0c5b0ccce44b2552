#!/usr/bin/env bash
# Every test of the project, in the order a failure is cheapest to see. This is the test command
# named in README.md and run by .ci/run; the Nix flake's checks call the same per-suite scripts.
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"
suites=(rust ffi python ocaml demo nix)
failed=()
start_all=$(date +%s)
for s in "${suites[@]}"; do
  t0=$(date +%s)
  step "suite: $s"
  if bash "scripts/test-$s.sh"; then
    printf '<== suite %s passed in %ss\n' "$s" "$(( $(date +%s) - t0 ))"
  else
    printf '<== suite %s FAILED after %ss\n' "$s" "$(( $(date +%s) - t0 ))"
    failed+=("$s")
  fi
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
  done
fi
all=$(( ${#suites[@]} + ${#ci_only[@]} ))
printf '\nall suites took %ss\n' "$(( $(date +%s) - start_all ))"
printf 'suites: %d passed, %d failed\n' "$(( all - ${#failed[@]} ))" "${#failed[@]}"
[ ${#failed[@]} -eq 0 ] || { echo "failed suites: ${failed[*]}"; exit 1; }
