# Evaluates nix/checks.nix and nix/devshell.nix (with nix/rust.nix and
# nix/python.nix behind them) against stand-ins for nixpkgs and crane, for
# nix/sandbox_sim.py. Every package is an attribute set whose outPath is a
# directory under `store` that the simulation fills from the host; every
# derivation builder returns its arguments. A nix file that names a package the
# stand-ins do not know fails here with "attribute '...' missing": add it to
# `pkgs` below and to HOST_TOOLS in nix/sandbox_sim.py.
{
  store,
  repo,
}:
let
  pkg = name: {
    outPath = "${store}/${name}";
    simName = name;
  };
  drv =
    kind: args:
    let
      name = args.pname or args.name or "unnamed";
    in
    args
    // {
      outPath = "${store}/${name}";
      simName = name;
      simKind = kind;
    };

  lib = {
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    mapAttrs = builtins.mapAttrs;
    meta.availableOn = _platform: _pkg: true;
    platforms.linux = [ ];
  };

  pythonLike =
    name:
    pkg name
    // {
      interpreter = "${store}/${name}/bin/python3";
      sitePackages = "lib/python3.11/site-packages";
      withPackages =
        f:
        pythonLike "pythonTestEnv"
        // {
          simPythonPackages = map (p: p.simName) (f pythonPackages);
        };
    };
  pythonPackages = builtins.listToAttrs (
    map
      (n: {
        name = n;
        value = pkg "python3Packages.${n}";
      })
      [
        "pytest"
        "pytest-timeout"
        "mypy"
        "pyzmq"
        "pip"
      ]
  );

  pkgs = {
    pkg-config = pkg "pkg-config";
    maturin = pkg "maturin";
    valgrind = pkg "valgrind";
    nix = pkg "nix";
    patchelf = pkg "patchelf";
    gcc = pkg "gcc";
    cbindgen = pkg "cbindgen";
    git = pkg "git";
    procps = pkg "procps";
    nats-server = pkg "nats-server";
    openssl = pkg "openssl";
    python3 = pythonLike "python3";
    stdenv = {
      hostPlatform = { };
      mkDerivation = drv "stdenv";
    };
    stdenvNoCC.mkDerivation = drv "stdenvNoCC";
    mkShell = args: drv "mkShell" ({ name = "devShell"; } // args);
  };

  ocamlPackages = builtins.listToAttrs (
    map
      (n: {
        name = n;
        value = pkg "ocamlPackages.${n}";
      })
      [
        "ocaml"
        "dune_3"
        "findlib"
        "alcotest"
        "yojson"
        "lwt"
      ]
  );

  craneLib = {
    mkCargoDerivation = drv "crane";
    buildPackage = drv "crane";
    cargoTest = drv "crane";
    buildDepsOnly = args: drv "crane-deps" (args // { pname = "${args.pname or "deps"}-deps"; });
    cargoClippy = args: drv "crane" (args // { pname = "clippy"; });
    cargoFmt = args: drv "crane" (args // { pname = "fmt"; });
    vendorMultipleCargoDeps = _: pkg "cargoVendorDir";
  };

  sources = {
    root = repo;
    rust = repo;
    wheel = repo;
    ffi = repo;
    ocaml = repo;
    nix = repo;
    full = repo;
    cargoLocks = [ ];
  };
  python = pythonLike "python";
  version = "0.0.0-sim";

  rust = import (repo + "/nix/rust.nix") {
    inherit pkgs lib craneLib sources version python ocamlPackages;
  };
  pythonPkgs = import (repo + "/nix/python.nix") {
    inherit pkgs lib craneLib rust sources python;
  };
  checks = import (repo + "/nix/checks.nix") {
    inherit pkgs lib craneLib rust pythonPkgs sources ocamlPackages;
    ocaml = pkg "ocaml-package";
  };
  devShell = import (repo + "/nix/devshell.nix") {
    inherit pkgs lib ocamlPackages;
    pythonEnv = pythonPkgs.pythonTestEnv;
    rustToolchainDev = pkg "rustToolchainDev";
  };

  names = xs: map (p: p.simName or (toString p)) xs;
  isEnvName = n: builtins.match "[A-Z][A-Z0-9_]*" n != null;
  envOf =
    d:
    builtins.mapAttrs (_: toString) (
      builtins.removeAttrs d (builtins.filter (n: !isEnvName n) (builtins.attrNames d))
    );
  describe = d: {
    kind = d.simKind or "package";
    nativeBuildInputs = names (d.nativeBuildInputs or [ ]);
    buildInputs = names (d.buildInputs or [ ]);
    packages = names (d.packages or [ ]);
    env = envOf d;
    build = d.buildPhaseCargoCommand or d.buildPhase or "";
    shellHook = d.shellHook or "";
  };
in
{
  checks = builtins.mapAttrs (_: describe) checks;
  devShell = describe devShell;
  pythonTestPackages = pythonPkgs.pythonTestEnv.simPythonPackages;
}
