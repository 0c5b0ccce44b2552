"""The hand-written stubs (_native.pyi) against the compiled module: same names, same parameters.
(scripts/test-python.sh also runs mypy.stubtest on the whole package.)"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Dict, List, Optional

import mycelium_native
from mycelium_native import _native

STUB = Path(mycelium_native.__file__).parent / "_native.pyi"


def stub_parameters(fn: ast.FunctionDef) -> List[str]:
    names = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
    return [n for n in names if n not in ("self", "cls")]


def runtime_parameters(obj: object) -> Optional[List[str]]:
    try:
        sig = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return [p for p in sig.parameters if p not in ("self", "cls", "$self", "$cls")]


def stub_tree() -> Dict[str, ast.AST]:
    tree = ast.parse(STUB.read_text())
    return {node.name: node for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}


def test_stub_names_match_the_module() -> None:
    stubbed = set(stub_tree())
    public = {name for name in dir(_native) if not name.startswith("__")}
    assert stubbed == public


def test_stub_signatures_match_the_module() -> None:
    problems: List[str] = []
    for name, node in stub_tree().items():
        target = getattr(_native, name)
        if isinstance(node, ast.FunctionDef):
            got = runtime_parameters(target)
            if got is not None and got != stub_parameters(node):
                problems.append(f"{name}: stub {stub_parameters(node)} != module {got}")
            continue
        assert isinstance(node, ast.ClassDef)
        members = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
        # A constructor (`__new__`, pyo3's `#[new]`) is checked against the class's own
        # signature; `__call__` only for being there (a slot wrapper has no signature of its
        # own).
        init = members.pop("__new__", None)
        if init is not None:
            got = runtime_parameters(target)
            if got != stub_parameters(init):
                problems.append(f"{name}(): stub {stub_parameters(init)} != module {got}")
        if "__call__" in members and "__call__" not in vars(target):
            problems.append(f"{name}: __call__ in the stub, not in the module")
        members.pop("__call__", None)
        runtime_members = {m for m in vars(target) if not m.startswith("__") or m == "__len__"}
        missing = runtime_members - set(members)
        extra = set(members) - runtime_members
        if missing or extra:
            problems.append(f"{name}: not in stub {sorted(missing)}, not in module {sorted(extra)}")
        for member_name, member in members.items():
            is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in member.decorator_list)
            attr = inspect.getattr_static(target, member_name, None)
            if is_property:
                if not inspect.isdatadescriptor(attr):
                    problems.append(f"{name}.{member_name}: a property in the stub, not in the module")
                continue
            got = runtime_parameters(getattr(target, member_name))
            if got is not None and got != stub_parameters(member):
                problems.append(f"{name}.{member_name}: stub {stub_parameters(member)} != module {got}")
    assert problems == []
