# The Python extension module `mycelium_native`: an abi3 wheel built by
# maturin from python/, and the same wheel installed into a site-packages tree
# so that the checks can import it without pip reaching for an index.
{
  pkgs,
  lib,
  craneLib,
  rust,
  sources,
  python,
}:
let
  # The interpreter the checks and the dev shell use: the pinned Python plus
  # what scripts/lib.sh would otherwise pip-install into its venv (pytest,
  # pytest-timeout, mypy, pyzmq for the benchmark). pip only unpacks our own
  # wheel, never an index.
  pythonTestEnv = python.withPackages (ps: [
    ps.pytest
    ps.pytest-timeout
    ps.mypy
    ps.pyzmq
    ps.pip
  ]);

  python-wheel = craneLib.mkCargoDerivation (
    rust.commonArgs
    // {
      pname = "mycelium-python-wheel";
      src = sources.wheel;
      # Shares the workspace's compiled dependencies when python/ is a member of
      # the root workspace; otherwise maturin builds them in python/target.
      inherit (rust) cargoArtifacts;
      doInstallCargoArtifacts = false;
      nativeBuildInputs = rust.commonArgs.nativeBuildInputs ++ [ pkgs.maturin ];
      # --compatibility linux: the wheel links against the Nix glibc, so a
      # manylinux tag would be a lie; auditwheel repair is for wheels that leave
      # Nix. The abi3 tag comes from the PyO3 features in python/Cargo.toml.
      buildPhaseCargoCommand = ''
        if [ ! -f python/pyproject.toml ]; then
          echo "error: python/pyproject.toml is missing; packages.python-wheel runs maturin in python/" >&2
          exit 1
        fi
        (
          cd python
          maturin build --release --locked --offline \
            --compatibility linux \
            --interpreter ${python.interpreter} \
            --out "$NIX_BUILD_TOP/dist"
        )
      '';
      installPhaseCommand = ''
        wheels=()
        for wheel in "$NIX_BUILD_TOP"/dist/*.whl; do
          if [ -f "$wheel" ]; then wheels+=("$wheel"); fi
        done
        if [ "''${#wheels[@]}" -ne 1 ]; then
          echo "error: expected exactly one wheel from maturin, found ''${#wheels[@]}" >&2
          exit 1
        fi
        install -Dm644 -t "$out" "''${wheels[0]}"
      '';
      meta.description = "abi3 wheel of the mycelium_native Python extension (pip install result/*.whl)";
    }
  );

  # The wheel unpacked into $out/${python.sitePackages}; put that directory on
  # PYTHONPATH to import mycelium_native.
  python-module = pkgs.stdenv.mkDerivation {
    pname = "mycelium-native-python";
    inherit (python-wheel) version;
    dontUnpack = true;
    nativeBuildInputs = [ pythonTestEnv ];
    installPhase = ''
      runHook preInstall
      export HOME="$NIX_BUILD_TOP" PIP_DISABLE_PIP_VERSION_CHECK=1
      python3 -m pip install --no-deps --no-index --no-cache-dir \
        --prefix "$out" ${python-wheel}/*.whl
      runHook postInstall
    '';
    # The extension must import with nothing but the pinned interpreter.
    doInstallCheck = true;
    installCheckPhase = ''
      runHook preInstallCheck
      PYTHONPATH="$out/${python.sitePackages}" python3 -c 'import mycelium_native'
      runHook postInstallCheck
    '';
  };
in
{
  inherit python-wheel python-module pythonTestEnv;
  sitePackages = "${python-module}/${python.sitePackages}";
}
