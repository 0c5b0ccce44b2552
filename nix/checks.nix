# The cross-language test matrix as flake checks. Each check runs the very
# script that .ci/run runs (scripts/test-<name>.sh), so the matrix has one
# definition. MYCELIUM_IN_NIX=1 tells a script to use the tools on PATH and
# never apt-get or pip-install; the variables below are the rest of the
# contract between these checks and the scripts (see docs/nix.md).
{
  pkgs,
  lib,
  craneLib,
  rust,
  pythonPkgs,
  ocaml,
  sources,
  ocamlPackages,
}:
let
  valgrind = lib.optional (lib.meta.availableOn pkgs.stdenv.hostPlatform pkgs.valgrind) pkgs.valgrind;
  ocamlTools = [
    ocamlPackages.ocaml
    ocamlPackages.dune_3
    ocamlPackages.findlib
  ];
  ocamlLibs = [
    ocamlPackages.alcotest
    ocamlPackages.yojson
    ocamlPackages.lwt
  ];

  ffiEnv = {
    # Prefix of packages.mycelium-ffi: lib/, include/mycelium.h and
    # lib/pkgconfig/mycelium.pc (also reachable through PKG_CONFIG_PATH).
    MYCELIUM_FFI_DIR = "${rust.mycelium-ffi}";
  };
  pythonEnv = {
    # Directory holding the wheel of packages.python-wheel.
    MYCELIUM_WHEEL_DIR = "${pythonPkgs.python-wheel}";
    # site-packages with that wheel installed; the check prepends it to PYTHONPATH.
    MYCELIUM_PYTHON_SITE = pythonPkgs.sitePackages;
  };

  # What each script gets on top of the Rust toolchain, pkg-config, the pinned
  # Python (with pytest) and the OCaml compiler that every check has.
  matrix = {
    # The CLI and bridge tests stop child processes with kill(1), which
    # stdenv's coreutils may not install; procps does.
    # rust/mycelium-nats's tests start nats-server processes and make TLS
    # test certificates with openssl.
    rust = {
      native = [
        pkgs.procps
        pkgs.nats-server
        pkgs.openssl
      ];
    };
    ffi = {
      native = valgrind;
      libs = [ rust.mycelium-ffi ];
      env = ffiEnv;
    };
    # test_nats.py and the OCaml NATS test start nats-server processes too.
    python = {
      native = [
        pkgs.maturin
        pkgs.nats-server
      ];
      env = pythonEnv;
    };
    ocaml = {
      # test-ocaml.sh runs the OCaml test executable under valgrind memcheck.
      native = valgrind ++ ocamlTools ++ [ pkgs.nats-server ];
      libs = ocamlLibs ++ [ rust.mycelium-ffi ];
      env = ffiEnv;
    };
    # test-demo.sh runs the demo over NATS too (--over-nats starts a nats-server).
    demo = {
      native = valgrind ++ ocamlTools ++ [
        pkgs.maturin
        pkgs.nats-server
      ];
      libs = ocamlLibs ++ [ rust.mycelium-ffi ];
      env = ffiEnv // pythonEnv;
    };
  };

  mkScriptCheck =
    name:
    {
      native ? [ ],
      libs ? [ ],
      env ? { },
    }:
    craneLib.mkCargoDerivation (
      rust.commonArgs
      // env
      // {
        pname = "mycelium-check-${name}";
        src = sources.full;
        # The scripts run `cargo test` in the dev profile; start from
        # dependencies compiled for it.
        cargoArtifacts = rust.cargoArtifactsDev;
        CARGO_PROFILE = "dev";
        doInstallCargoArtifacts = false;
        MYCELIUM_IN_NIX = "1";
        # The test interpreter first, so that `python3` is the one with pytest.
        nativeBuildInputs = [ pythonPkgs.pythonTestEnv ] ++ rust.commonArgs.nativeBuildInputs ++ native;
        buildInputs = rust.commonArgs.buildInputs ++ libs;
        buildPhaseCargoCommand = ''
          script=scripts/test-${name}.sh
          if [ ! -f "$script" ]; then
            echo "error: $script is missing; checks.${name} runs it (see docs/nix.md)" >&2
            exit 1
          fi
          # The sandbox has no writable HOME; pytest, dune and cargo want one.
          export HOME="$NIX_BUILD_TOP/home"
          mkdir -p "$HOME"
          export DUNE_CACHE=disabled
          # The test interpreter goes first so `python3` has pytest (and the
          # extension, when MYCELIUM_PYTHON_SITE is set).
          export PATH="${pythonPkgs.pythonTestEnv}/bin:$PATH"
          # PYO3_PYTHON stays rust.commonArgs' (the interpreter cargoArtifactsDev
          # was built with): changing it would rebuild the whole pyo3 chain.
          if [ -n "''${MYCELIUM_PYTHON_SITE:-}" ]; then
            export PYTHONPATH="$MYCELIUM_PYTHON_SITE''${PYTHONPATH:+:$PYTHONPATH}"
          fi
          bash "$script"
        '';
        installPhaseCommand = ''
          mkdir -p "$out"
          echo "scripts/test-${name}.sh passed" >"$out/result"
        '';
      }
    );

  scriptChecks = lib.mapAttrs mkScriptCheck matrix;

  # scripts/test-nix.sh in the sandbox: parse every .nix file and check the
  # lock's shape with the Nix and Python of the pinned nixpkgs. It needs no
  # cargo, so it is a plain derivation over the packaging files only.
  nix = pkgs.stdenvNoCC.mkDerivation {
    name = "mycelium-check-nix";
    src = sources.nix;
    nativeBuildInputs = [
      pkgs.nix
      pkgs.python3
    ];
    MYCELIUM_IN_NIX = "1";
    dontConfigure = true;
    buildPhase = ''
      runHook preBuild
      export HOME="$NIX_BUILD_TOP/home"
      mkdir -p "$HOME"
      bash scripts/test-nix.sh
      runHook postBuild
    '';
    installPhase = ''
      mkdir -p "$out"
      echo "scripts/test-nix.sh passed" >"$out/result"
    '';
  };
in
scriptChecks
// rust.checks
// {
  inherit nix;
  # Building the packages is part of `nix flake check` too.
  package-mycelium = rust.mycelium;
  package-mycelium-ffi = rust.mycelium-ffi;
  package-python-wheel = pythonPkgs.python-wheel;
  package-python-module = pythonPkgs.python-module;
  package-ocaml = ocaml;

  # The Rust host embedding the installed wheel (tests/embed-python), as its
  # own derivation over packages.python-module: what a user embedding Python
  # gets. scripts/test-python.sh runs the same test.
  embed-python = craneLib.cargoTest (
    rust.commonArgs
    // {
      pname = "mycelium-check-embed-python";
      cargoArtifacts = rust.cargoArtifactsDev;
      CARGO_PROFILE = "dev";
      # tests/embed-python looks for <venv>/lib/python3.X/site-packages: the
      # python-module prefix has that layout.
      MYCELIUM_VENV = "${pythonPkgs.python-module}";
      cargoTestExtraArgs = "--locked -p mycelium-embed-python --test embed -- --ignored";
    }
  );
}
