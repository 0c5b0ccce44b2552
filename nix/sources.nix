# Which files each derivation sees.
#
# Narrow sources are what make the cache work: editing a Python test must not
# rebuild the Rust workspace, and editing docs must not rerun any check. They
# also keep build output (target/, _build/, virtualenvs) out of the store when
# the flake is evaluated from a dirty tree or without git.
{ lib, root }:
let
  fs = lib.fileset;
  at = rel: root + "/${rel}";
  optional = rel: fs.maybeMissing (at rel);

  cargoManifest = lib.importTOML (at "Cargo.toml");

  # Cargo refuses to load a workspace whose members are missing, so every member
  # directory belongs to the Rust source even when it lives outside rust/ (a
  # PyO3 crate under python/, an ocaml-rs stub crate under ocaml/). A glob member
  # such as "rust/*" contributes the directory in front of the glob.
  memberDir =
    member:
    let
      beforeGlob = builtins.head (lib.splitString "*" member);
    in
    optional (lib.removeSuffix "/" beforeGlob);
  workspaceMembers = map memberDir (cargoManifest.workspace.members or [ ]);

  # Left behind by local builds; never an input.
  buildLeftovers = fs.unions (
    [
      (optional "target")
      (optional "result")
      (optional "ocaml/_build")
      (optional "ocaml/_opam")
      (optional "python/.venv")
      (optional "python/target")
      (optional "python/dist")
    ]
    ++ lib.optional (builtins.pathExists (at "python")) (
      fs.fileFilter (file: file.hasExt "pyc" || file.hasExt "so") (at "python")
    )
  );

  toSource = fileset: fs.toSource {
    inherit root;
    fileset = fs.difference fileset buildLeftovers;
  };

  # What `cargo build --workspace` reads: manifests, the lock, crate sources,
  # the schema that build scripts compile (contracts.yaml) and the committed test
  # vectors that the contract tests compare against.
  rustFiles = fs.unions (
    [
      (at "Cargo.toml")
      (optional "Cargo.lock")
      (optional ".cargo")
      (optional "rust")
      (optional "rust-toolchain.toml")
      (optional "rustfmt.toml")
      (optional "clippy.toml")
      (optional "contracts.yaml")
      (optional "tests/vectors")
    ]
    ++ workspaceMembers
  );

  # maturin reads python/pyproject.toml, which may point at the repository's
  # README and licence files.
  wheelFiles = fs.unions [
    rustFiles
    (optional "python")
    (optional "README.md")
    (optional "LICENSE")
    (optional "LICENSE-APACHE")
    (optional "LICENSE-MIT")
  ];

  # packages.mycelium-ffi installs with the script users without Nix run.
  ffiFiles = fs.unions [
    rustFiles
    (at "scripts/install-ffi.sh")
    (at "scripts/lib.sh")
  ];

  ocamlFiles = fs.unions [
    rustFiles
    (optional "ocaml")
  ];

  # The Nix packaging itself, for the `nix` check: it must not rebuild when
  # anything but the packaging and the test scripts changes.
  nixFiles = fs.unions [
    (at "flake.nix")
    (optional "flake.lock")
    (optional "nix")
    # Read by check_flake.py: the suites .ci/run runs, and which test scripts exist.
    (optional "scripts")
  ];
in
{
  inherit root;
  rust = toSource rustFiles;
  wheel = toSource wheelFiles;
  ffi = toSource ffiFiles;
  ocaml = toSource ocamlFiles;
  nix = toSource nixFiles;
  # The script checks run the same scripts as .ci/run, which may touch any part
  # of the tree (python/tests, ocaml/test, tests/, scripts/).
  full = toSource root;

  # Every Cargo.lock in the tree. The Python and OCaml crates may sit outside the
  # root workspace with locks of their own; vendoring all of them lets any cargo
  # invocation in any derivation run offline.
  cargoLocks = fs.toList (
    fs.difference (fs.fileFilter (file: file.name == "Cargo.lock") root) buildLeftovers
  );
}
