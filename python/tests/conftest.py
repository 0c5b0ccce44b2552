"""Shared fixtures: the generated contracts module, runtimes, and helpers to run a child Python.

The contracts module is generated from the repository's contracts.yaml by
`mycelium codegen --lang python` (scripts/test-python.sh sets MYCELIUM_CONTRACTS_DIR to the
directory it generated into; without it the module is generated here with cargo).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator, List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_YAML = REPO_ROOT / "contracts.yaml"
VECTORS_JSON = REPO_ROOT / "tests" / "vectors" / "contracts.json"

# Prepended to the code of a child Python that a test interrupts with SIGINT: a child started
# with SIGINT ignored (as by a non-interactive shell's `cmd &`, which CI harnesses may be)
# inherits that and would never see the signal; this gives it Python's usual handler back.
RESTORE_SIGINT = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"


def _generated_dir(tmp_root: Path) -> Path:
    given = os.environ.get("MYCELIUM_CONTRACTS_DIR")
    if given:
        path = Path(given)
        if not (path / "contracts.py").is_file():
            raise RuntimeError(f"MYCELIUM_CONTRACTS_DIR={given} holds no contracts.py")
        return path
    out = tmp_root / "generated"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "cargo", "run", "-q", "-p", "mycelium-codegen", "--",
            "codegen", "--lang", "python", "--schema", str(CONTRACTS_YAML), "--out", str(out / "contracts.py"),
        ],
        cwd=REPO_ROOT,
        check=True,
    )
    return out


@pytest.fixture(scope="session")
def contracts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generated_dir(tmp_path_factory.mktemp("contracts"))


@pytest.fixture(scope="session")
def contracts(contracts_dir: Path) -> ModuleType:
    sys.path.insert(0, str(contracts_dir))
    try:
        return importlib.import_module("contracts")
    finally:
        sys.path.remove(str(contracts_dir))


@pytest.fixture
def rt(contracts: ModuleType) -> Iterator["mycelium_native.Runtime"]:  # noqa: F821
    from mycelium_native import Runtime

    runtime = Runtime(contracts)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def unraisable() -> Iterator[List["sys.UnraisableHookArgs"]]:
    """Collects what reaches sys.unraisablehook during the test."""
    seen: List[sys.UnraisableHookArgs] = []
    lock = threading.Lock()

    def hook(args: "sys.UnraisableHookArgs") -> None:
        with lock:
            seen.append(args)

    old = sys.unraisablehook
    sys.unraisablehook = hook
    try:
        yield seen
    finally:
        sys.unraisablehook = old


def run_child(code: str, contracts_dir: Path, timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter that can import mycelium_native and contracts."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(contracts_dir), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def child(contracts_dir: Path) -> Callable[..., subprocess.CompletedProcess]:
    return lambda code, **kw: run_child(code, contracts_dir, **kw)
