# The Rust workspace built with crane: vendored crates, cached dependency
# builds, the `mycelium` CLI, the C ABI library (mycelium-ffi) and the
# clippy/rustfmt checks.
{
  pkgs,
  lib,
  craneLib,
  sources,
  version,
  python,
  ocamlPackages,
}:
let
  # All Cargo.lock files of the tree vendored into one directory, so that every
  # cargo call below (and the ones made by maturin and dune) resolves crates
  # offline, as the Nix sandbox requires.
  cargoVendorDir = craneLib.vendorMultipleCargoDeps {
    cargoLockList = sources.cargoLocks;
  };

  commonArgs = {
    pname = "mycelium";
    inherit version cargoVendorDir;
    src = sources.rust;
    strictDeps = true;
    # Workspace members may include the PyO3 crate and the ocaml-rs stub crate;
    # their build scripts ask the interpreter and `ocamlfind`/`ocamlopt` for
    # paths, so both must be on PATH whenever the whole workspace compiles.
    nativeBuildInputs = [
      pkgs.pkg-config
      python
      ocamlPackages.ocaml
      ocamlPackages.findlib
    ];
    buildInputs = [ python ];
    PYO3_PYTHON = python.interpreter;
  };

  # Compiled dependencies, shared by every derivation below so that a source
  # change rebuilds only the workspace crates. Release for the packages, dev for
  # the checks because the test scripts run `cargo test` in the dev profile.
  cargoArtifacts = craneLib.buildDepsOnly commonArgs;
  cargoArtifactsDev = craneLib.buildDepsOnly (
    commonArgs
    // {
      pname = "mycelium-dev";
      CARGO_PROFILE = "dev";
    }
  );

  # The C ABI as a C library prefix: lib/ (shared and static), include/ (the
  # cbindgen header committed in the crate) and lib/pkgconfig/mycelium.pc.
  mycelium-ffi = craneLib.mkCargoDerivation (
    commonArgs
    // {
      pname = "mycelium-ffi";
      # scripts/install-ffi.sh is the one definition of the installed layout
      # (SONAME, versioned names, mycelium.pc from rust/mycelium-ffi/mycelium.pc.in),
      # shared with scripts/test-ffi.sh and users without Nix.
      src = sources.ffi;
      inherit cargoArtifacts;
      doInstallCargoArtifacts = false;
      nativeBuildInputs = commonArgs.nativeBuildInputs ++ [ pkgs.patchelf ];
      MYCELIUM_IN_NIX = "1";
      buildPhaseCargoCommand = ''
        if [ ! -f rust/mycelium-ffi/Cargo.toml ]; then
          echo "error: rust/mycelium-ffi/Cargo.toml is missing; packages.mycelium-ffi builds that crate" >&2
          exit 1
        fi
        cargoWithProfile build --locked -p mycelium-ffi
      '';
      # install-ffi.sh runs `cargo build --release -p mycelium-ffi`, which finds
      # the build above fresh, then installs from target/release.
      installPhaseCommand = ''
        bash scripts/install-ffi.sh "$out"
      '';
      # A header that does not compile on its own, or a .pc file that points at
      # the wrong place, is caught here rather than by the first C user.
      doInstallCheck = true;
      installCheckPhase = ''
        runHook preInstallCheck
        export PKG_CONFIG_PATH="$out/lib/pkgconfig''${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
        pkg-config --validate mycelium
        smoke="$NIX_BUILD_TOP/smoke.c"
        for header in "$out"/include/*.h; do
          echo "#include \"$(basename "$header")\"" >>"$smoke"
        done
        echo 'int main(void) { return 0; }' >>"$smoke"
        $CC -std=c11 -Wall -Werror $(pkg-config --cflags mycelium) "$smoke" \
          $(pkg-config --libs mycelium) -o "$NIX_BUILD_TOP/smoke"
        runHook postInstallCheck
      '';
      meta = {
        description = "C ABI of the Mycelium message bus (shared and static library, header, pkg-config file)";
        pkgConfigModules = [ "mycelium" ];
      };
    }
  );

  # The `mycelium` CLI (schema check, digest, codegen, encode/decode, vectors).
  mycelium = craneLib.buildPackage (
    commonArgs
    // {
      inherit cargoArtifacts;
      cargoExtraArgs = "--locked -p mycelium-codegen";
      # The test matrix runs in checks.rust; building the CLI should not
      # repeat it.
      doCheck = false;
      meta.mainProgram = "mycelium";
    }
  );
in
{
  inherit
    commonArgs
    cargoVendorDir
    cargoArtifacts
    cargoArtifactsDev
    mycelium
    mycelium-ffi
    ;

  checks = {
    clippy = craneLib.cargoClippy (
      commonArgs
      // {
        inherit cargoArtifacts;
        cargoClippyExtraArgs = "--all-targets -- --deny warnings";
      }
    );
    fmt = craneLib.cargoFmt {
      inherit (commonArgs) pname version src;
      cargoExtraArgs = "--all";
    };
  };
}
