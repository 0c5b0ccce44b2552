#!/usr/bin/env bash
# Installs what a C user needs: mycelium.h, libmycelium_ffi.so and .a, and a pkg-config file.
# Usage: scripts/install-ffi.sh PREFIX   (builds in release mode first)
#   then: cc app.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs mycelium)
source "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || die "usage: $0 PREFIX"
prefix="$1"
cd "$MYCELIUM_ROOT"
ensure_rust
profile="${MYCELIUM_PROFILE:-release}"
if [ "$profile" = release ]; then cargo build -q --release -p mycelium-ffi; else cargo build -q -p mycelium-ffi; fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
install -m 0644 rust/mycelium-ffi/include/mycelium.h "$prefix/include/"
install -m 0755 "target/$profile/libmycelium_ffi.so" "$prefix/lib/"
install -m 0644 "target/$profile/libmycelium_ffi.a" "$prefix/lib/"
sed -e "s|@prefix@|$prefix|" -e "s|@version@|$version|" rust/mycelium-ffi/mycelium.pc.in \
  > "$prefix/lib/pkgconfig/mycelium.pc"
echo "installed mycelium $version into $prefix"
