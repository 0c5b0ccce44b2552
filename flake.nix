{
  description = "Mycelium typed pub/sub message bus: pinned toolchains, C ABI library, Python wheel, OCaml package and the cross-language test matrix";

  # Every input is pinned by flake.lock; docs/nix.md says where each pin came from
  # and how to move it. rust-overlay follows our nixpkgs so that the whole build
  # uses one stdenv (one glibc, one C compiler) for Rust, C, Python and OCaml.
  inputs = {
    nixpkgs.url = "github:nixos/nixpkgs/nixos-26.05";
    flake-utils.url = "github:numtide/flake-utils";
    crane.url = "github:ipetkov/crane";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      flake-utils,
      crane,
      rust-overlay,
    }:
    let
      # Linux only: the FFI and embedding checks use valgrind and ELF shared
      # objects, and the wheel is tagged for Linux.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
    in
    flake-utils.lib.eachSystem systems (
      system:
      let
        pkgs = import nixpkgs {
          inherit system;
          overlays = [ rust-overlay.overlays.default ];
        };
        inherit (pkgs) lib;

        # The pinned toolchains. Rust comes from rust-overlay so the exact
        # release is independent of the nixpkgs branch; Python is pinned by the
        # nixpkgs revision in flake.lock. OCaml is the 4.14 series, not
        # nixpkgs' default (5.x): the stubs' runtime-lock code and the valgrind
        # suppressions are written for, and tested on, the OCaml 4 runtime (CI
        # runs Debian's 4.13); scripts/test-ocaml.sh refuses OCaml 5.
        rustVersion = "1.95.0";
        rustToolchain = pkgs.rust-bin.stable.${rustVersion}.default;
        rustToolchainDev = pkgs.rust-bin.stable.${rustVersion}.default.override {
          extensions = [
            "rust-src"
            "rust-analyzer"
          ];
        };
        python = pkgs.python311;
        ocamlPackages = pkgs.ocaml-ng.ocamlPackages_4_14;

        craneLib = (crane.mkLib pkgs).overrideToolchain (_: rustToolchain);
        sources = import ./nix/sources.nix {
          inherit lib;
          root = ./.;
        };
        version = (lib.importTOML ./Cargo.toml).workspace.package.version;

        rust = import ./nix/rust.nix {
          inherit
            pkgs
            lib
            craneLib
            sources
            version
            python
            ocamlPackages
            ;
        };
        pythonPkgs = import ./nix/python.nix {
          inherit
            pkgs
            lib
            craneLib
            rust
            sources
            python
            ;
        };
        ocaml = import ./nix/ocaml.nix {
          inherit
            pkgs
            lib
            rust
            sources
            version
            ocamlPackages
            rustToolchain
            ;
        };
      in
      {
        packages = {
          inherit (rust) mycelium mycelium-ffi;
          inherit (pythonPkgs) python-wheel;
          inherit ocaml;
          ocaml-lwt = ocaml.lwt;
          # What a C or Rust user installs: the `mycelium` CLI plus the C ABI
          # library, header and pkg-config file in one prefix.
          default = pkgs.symlinkJoin {
            name = "mycelium-${version}";
            paths = [
              rust.mycelium
              rust.mycelium-ffi
            ];
          };
        };

        checks =
          import ./nix/checks.nix {
            inherit
              pkgs
              lib
              craneLib
              rust
              pythonPkgs
              ocaml
              sources
              ocamlPackages
              ;
          }
          // {
            # Beside package-ocaml (checks.nix): the Lwt package builds too.
            package-ocaml-lwt = ocaml.lwt;
          };

        devShells.default = import ./nix/devshell.nix {
          inherit
            pkgs
            lib
            ocamlPackages
            rustToolchainDev
            ;
          pythonEnv = pythonPkgs.pythonTestEnv;
        };
      }
    );
}
