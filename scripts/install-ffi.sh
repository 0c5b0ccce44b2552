#!/usr/bin/env bash
# Installs what a C user needs: mycelium.h, the shared library with a SONAME and versioned
# names, the static library, and a pkg-config file (from rust/mycelium-ffi/mycelium.pc.in, the
# one template).
# Usage: scripts/install-ffi.sh PREFIX   (builds in release mode first; MYCELIUM_PROFILE=debug
# installs the debug build)
#   then: cc app.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs mycelium)
#
# Layout (the ABI version of src/version.rs, not the package version, names the library, so a
# program built against ABI 1.x loads any later 1.y):
#   lib/libmycelium_ffi.so.MAJOR.MINOR.0   the library, SONAME libmycelium_ffi.so.MAJOR
#   lib/libmycelium_ffi.so.MAJOR -> libmycelium_ffi.so.MAJOR.MINOR.0   (what programs load)
#   lib/libmycelium_ffi.so       -> libmycelium_ffi.so.MAJOR           (what -lmycelium_ffi finds)
source "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || die "usage: $0 PREFIX"
prefix="$1"
cd "$MYCELIUM_ROOT"
ensure_rust
# patchelf sets the SONAME on the installed copy only: the build tree's library keeps none, so
# programs linked against target/*/libmycelium_ffi.so (the tests, the examples) need no symlink.
ensure_apt patchelf
profile="${MYCELIUM_PROFILE:-release}"
if [ "$profile" = release ]; then cargo build -q --release -p mycelium-ffi; else cargo build -q -p mycelium-ffi; fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
abi_major=$(sed -n 's/^pub const MYCELIUM_ABI_VERSION_MAJOR: u32 = \([0-9]*\);/\1/p' rust/mycelium-ffi/src/version.rs)
abi_minor=$(sed -n 's/^pub const MYCELIUM_ABI_VERSION_MINOR: u32 = \([0-9]*\);/\1/p' rust/mycelium-ffi/src/version.rs)
[ -n "$abi_major" ] && [ -n "$abi_minor" ] || die "cannot read the ABI version from rust/mycelium-ffi/src/version.rs"
real="libmycelium_ffi.so.$abi_major.$abi_minor.0"
soname="libmycelium_ffi.so.$abi_major"
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
install -m 0644 rust/mycelium-ffi/include/mycelium.h "$prefix/include/"
rm -f "$prefix/lib/libmycelium_ffi.so" "$prefix/lib/$soname"
install -m 0755 "target/$profile/libmycelium_ffi.so" "$prefix/lib/$real"
patchelf --set-soname "$soname" "$prefix/lib/$real"
ln -s "$real" "$prefix/lib/$soname"
ln -s "$soname" "$prefix/lib/libmycelium_ffi.so"
install -m 0644 "target/$profile/libmycelium_ffi.a" "$prefix/lib/"
sed -e "s|@prefix@|$prefix|" -e "s|@version@|$version|" rust/mycelium-ffi/mycelium.pc.in \
  > "$prefix/lib/pkgconfig/mycelium.pc"
echo "installed mycelium $version (C ABI $abi_major.$abi_minor, $soname) into $prefix"
