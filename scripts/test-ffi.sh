#!/usr/bin/env bash
# C ABI suite: the C test program (gcc -Wall -Wextra -Werror) run plain, under valgrind memcheck
# and under AddressSanitizer; the Rust tests of mycelium-ffi under AddressSanitizer.
# (The header-drift check and the libloading tests run in the Rust suite.)
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"
ensure_rust
ensure_apt gcc valgrind libc6-dev pkg-config binutils

step "building the cdylib"
cargo build -p mycelium-ffi
lib_dir="$MYCELIUM_ROOT/target/debug"
out="$MYCELIUM_ROOT/target/c-tests"
mkdir -p "$out"
cflags=(-std=c11 -Wall -Wextra -Werror -g -O1 -I rust/mycelium-ffi/include)
ldflags=(-L "$lib_dir" -lmycelium_ffi -lpthread -Wl,-rpath,"$lib_dir")

step "C test program (gcc -Wall -Wextra -Werror)"
gcc "${cflags[@]}" tests/c/ffi_test.c -o "$out/ffi_test" "${ldflags[@]}"
"$out/ffi_test" contracts.yaml

step "C hardening tests (cycles of unsubscribing callbacks, bad enums and lengths, struct sizes, receiver visits)"
gcc "${cflags[@]}" tests/c/hardening_test.c -o "$out/hardening_test" "${ldflags[@]}"
"$out/hardening_test"

step "C request/reply tests (serve, request, request_all, failures, timeouts, concurrent requesters)"
gcc "${cflags[@]}" tests/c/request_reply_test.c -o "$out/request_reply_test" "${ldflags[@]}"
"$out/request_reply_test"

step "C example examples/c/pubsub.c"
gcc "${cflags[@]}" examples/c/pubsub.c -o "$out/pubsub" "${ldflags[@]}"
"$out/pubsub" contracts.yaml

step "README.md's C snippet (scripts/readme_snippet.py c), built and run"
python3 scripts/readme_snippet.py c > "$out/readme.c"
gcc "${cflags[@]}" "$out/readme.c" -o "$out/readme" "${ldflags[@]}"
"$out/readme"

step "C example examples/c/bridge.c (two processes joined through a Unix socket)"
gcc "${cflags[@]}" examples/c/bridge.c -o "$out/bridge" "${ldflags[@]}"
"$out/bridge" contracts.yaml

step "install layout + pkg-config: the example built against the installed copy"
prefix="$out/prefix"
if in_nix && [ -n "${MYCELIUM_FFI_DIR:-}" ]; then
  # In a Nix check the installed copy under test is packages.mycelium-ffi (made by install-ffi.sh).
  prefix="$MYCELIUM_FFI_DIR"
else
  rm -rf "$prefix"
  MYCELIUM_PROFILE=debug bash scripts/install-ffi.sh "$prefix"
fi
# shellcheck disable=SC2046
gcc -std=c11 -Wall -Wextra -Werror examples/c/pubsub.c -o "$out/pubsub_pc" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs mycelium) -Wl,-rpath,"$prefix/lib"
"$out/pubsub_pc" contracts.yaml
# A versioned install: the library carries a SONAME naming the ABI major, programs record that
# name, and the unversioned name is only a link for the linker.
soname=$(readelf -d "$prefix/lib/libmycelium_ffi.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libmycelium_ffi.so.1 ] || die "installed library SONAME is '$soname', not libmycelium_ffi.so.1"
[ -L "$prefix/lib/libmycelium_ffi.so.1" ] && [ -L "$prefix/lib/libmycelium_ffi.so" ] \
  || die "the versioned symlinks are missing from $prefix/lib"
readelf -d "$out/pubsub_pc" | grep -q 'NEEDED.*\[libmycelium_ffi\.so\.1\]' \
  || die "a program linked against the installed library does not record libmycelium_ffi.so.1"
# and statically linked against the .a
gcc -std=c11 -Wall -Wextra -Werror examples/c/pubsub.c -o "$out/pubsub_static" -I "$prefix/include" \
  "$prefix/lib/libmycelium_ffi.a" -lpthread -ldl -lm
"$out/pubsub_static" contracts.yaml

step "C test program under valgrind memcheck"
valgrind -q --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite "$out/ffi_test" contracts.yaml
valgrind -q --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite "$out/hardening_test"
valgrind -q --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite "$out/request_reply_test"

step "C test program under AddressSanitizer"
gcc "${cflags[@]}" -fsanitize=address -fno-omit-frame-pointer tests/c/ffi_test.c \
  -o "$out/ffi_test_asan" "${ldflags[@]}"
ASAN_OPTIONS=detect_leaks=1 "$out/ffi_test_asan" contracts.yaml
gcc "${cflags[@]}" -fsanitize=address -fno-omit-frame-pointer tests/c/hardening_test.c \
  -o "$out/hardening_test_asan" "${ldflags[@]}"
ASAN_OPTIONS=detect_leaks=1 "$out/hardening_test_asan"
gcc "${cflags[@]}" -fsanitize=address -fno-omit-frame-pointer tests/c/request_reply_test.c \
  -o "$out/request_reply_test_asan" "${ldflags[@]}"
ASAN_OPTIONS=detect_leaks=1 "$out/request_reply_test_asan"

# --export-dynamic: the test binary carries the ASan runtime, and the cdylib it dlopens needs
# to resolve the runtime's symbols from it.
step "Rust tests of mycelium-ffi under AddressSanitizer"
host=$(rustc -vV | sed -n "s/^host: //p")
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address -Clink-arg=-Wl,--export-dynamic" CARGO_TARGET_DIR="$MYCELIUM_ROOT/target/asan" \
  ASAN_OPTIONS=detect_leaks=1 \
  cargo test -p mycelium-ffi --target "$host" --lib --test api
