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
}
