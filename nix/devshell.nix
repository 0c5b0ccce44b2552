# `nix develop`: every tool the scripts in scripts/ use, at the pinned
# versions, so the commands of the README work unchanged inside the shell.
{
  pkgs,
  lib,
  # The pinned Python with the test tools (nix/python.nix).
  pythonEnv,
  ocamlPackages,
  rustToolchainDev,
}:
pkgs.mkShell {
  packages = [
    rustToolchainDev
    pythonEnv
    pkgs.maturin
    ocamlPackages.ocaml
    ocamlPackages.dune_3
    ocamlPackages.findlib
    pkgs.gcc
    pkgs.pkg-config
    pkgs.cbindgen
    # scripts/install-ffi.sh sets the SONAME of the installed library.
    pkgs.patchelf
    pkgs.git
    # kill(1), which the Rust suite's CLI and bridge tests run
    pkgs.procps
  ]
  ++ lib.optional (lib.meta.availableOn pkgs.stdenv.hostPlatform pkgs.valgrind) pkgs.valgrind;

  # Libraries go in buildInputs so findlib's setup hook puts them on OCAMLPATH.
  buildInputs = [
    ocamlPackages.alcotest
    ocamlPackages.yojson
    ocamlPackages.lwt
  ];

  # The scripts then use what is on PATH instead of installing anything.
  MYCELIUM_IN_NIX = "1";
  PYO3_PYTHON = pythonEnv.interpreter;
  RUST_SRC_PATH = "${rustToolchainDev}/lib/rustlib/src/rust/library";

  # The README's commands build the extension into a venv (`maturin develop`)
  # and import it from there, as without Nix. The venv is made from the pinned
  # interpreter with its packages visible (pytest, mypy, ...), and its maturin
  # is the pinned one: nothing is fetched from PyPI. scripts/lib.sh
  # (ensure_venv) refuses to run in the shell without it.
  shellHook = ''
    export MYCELIUM_VENV="''${MYCELIUM_VENV:-$PWD/.venv}"
    if [ ! -x "$MYCELIUM_VENV/bin/python" ]; then
      ${pythonEnv.interpreter} -m venv --system-site-packages "$MYCELIUM_VENV"
    fi
    ln -sf ${pkgs.maturin}/bin/maturin "$MYCELIUM_VENV/bin/maturin"
  '';
}
