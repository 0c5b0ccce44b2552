# The opam packages of ocaml/, built with dune from nixpkgs' OCaml package set:
# `mycelium_native` (this derivation) and `mycelium_native_lwt` (its `lwt`
# attribute: the Lwt interface, a package of its own so the core one does not
# depend on Lwt). Its stubs are Rust (ocaml-rs), so dune calls cargo during
# the build; cargo gets the pinned toolchain and the vendored crates of every
# Cargo.lock, and runs offline. docs/nix.md explains why this uses nixpkgs'
# ocamlPackages rather than opam2nix.
{
  pkgs,
  lib,
  rust,
  sources,
  version,
  ocamlPackages,
  rustToolchain,
}:
let
  mycelium_native = ocamlPackages.buildDunePackage {
  pname = "mycelium_native";
  inherit version;
  src = sources.ocaml;
  # dune works in ocaml/, but the stub crate may belong to the root Cargo
  # workspace, whose target/ sits at the top of the tree: keep the whole
  # tree writable, not just ocaml/.
  sourceRoot = "source/ocaml";
  postUnpack = ''
    chmod -R u+w source
  '';

  nativeBuildInputs = [
    rustToolchain
    pkgs.pkg-config
  ];
  buildInputs = [ rust.mycelium-ffi ];
  checkInputs = [ ocamlPackages.alcotest ocamlPackages.yojson ];
  # The test matrix lives in scripts/test-ocaml.sh and runs as checks.ocaml;
  # building the package should not be a second, diverging definition of it.
  doCheck = false;

  preConfigure = ''
    if [ ! -f dune-project ]; then
      echo "error: ocaml/dune-project is missing; packages.ocaml builds the dune project in ocaml/" >&2
      exit 1
    fi
    export CARGO_HOME="$NIX_BUILD_TOP/cargo-home"
    mkdir -p "$CARGO_HOME"
    install -m644 ${rust.cargoVendorDir}/config.toml "$CARGO_HOME/config.toml"
    export CARGO_NET_OFFLINE=true
    export DUNE_CACHE=disabled
    # ocaml/src/dune builds the Rust stubs in this cargo profile (default dev,
    # for quick test builds); the package is what users link, so optimise it.
    export MYCELIUM_CARGO_PROFILE=release
  '';

  meta = {
    description = "OCaml bindings of the Mycelium message bus (opam package mycelium_native)";
    platforms = lib.platforms.linux;
  };
  };

  # `dune build -p mycelium_native_lwt` builds only that package's stanzas
  # (ocaml/lwt) and finds mycelium_native installed, as opam would.
  mycelium_native_lwt = ocamlPackages.buildDunePackage {
    pname = "mycelium_native_lwt";
    inherit version;
    src = sources.ocaml;
    sourceRoot = "source/ocaml";
    propagatedBuildInputs = [
      mycelium_native
      ocamlPackages.lwt
    ];
    doCheck = false;
    meta = {
      description = "Lwt interface of the Mycelium OCaml bindings (opam package mycelium_native_lwt)";
      platforms = lib.platforms.linux;
    };
  };
in
mycelium_native // { lwt = mycelium_native_lwt; }
