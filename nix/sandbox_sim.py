#!/usr/bin/env python3
"""Runs the flake's script checks the way their derivations would, without Nix.

nixpkgs cannot be fetched here, so this is the nearest thing to `nix flake check`
that CI can run. For each suite of scripts/test-all.sh it

1. evaluates nix/checks.nix and nix/devshell.nix (through nix/sim/eval.nix, with
   stand-ins for nixpkgs and crane) to learn the check's nativeBuildInputs,
   buildInputs, environment and build command;
2. makes a store: one directory per input whose bin/ holds symlinks to the host
   binaries that the nixpkgs package of that name provides (HOST_TOOLS), and the
   flake's own packages (packages.mycelium-ffi by scripts/install-ffi.sh, the wheel
   and python-module by maturin and pip) from the already-built cargo target dir;
3. runs the check's build command in a mount and network namespace
   (`unshare -m -n`): the source at its usual path but through an overlay without
   .git, venvs or any untracked file (only target/ is kept, as crane's
   cargoArtifacts would be), every other mount read-only except $TMPDIR and $out,
   HOME=/homeless-shelter, PATH made of the inputs' bin/ only, and a
   command_not_found_handle that names the command and the check.

It also checks, by parsing, that every command the check's scripts (and the
README's scripts in the dev shell) call is provided by that check or shell
(`--static-only` does only this).

What differs from a real Nix build is printed at the end (and in docs/nix.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# nixpkgs attribute (as nix/sim/eval.nix names it) -> host binaries it provides.
# Names are looked up on the host PATH; a path is taken as is.
COREUTILS = (
    "[ arch b2sum base32 base64 basename basenc cat chcon chgrp chmod chown chroot cksum comm cp "
    "csplit cut date dd df dir dircolors dirname du echo env expand expr factor false fmt fold "
    "groups head hostid id install join link ln logname ls md5sum mkdir mkfifo mknod mktemp mv "
    "nice nl nohup nproc numfmt od paste pathchk pinky pr printenv printf ptx pwd readlink "
    "realpath rm rmdir runcon seq sha1sum sha224sum sha256sum sha384sum sha512sum shred shuf "
    "sleep sort split stat stdbuf stty sum sync tac tail tee test timeout touch tr true truncate "
    "tsort tty uname unexpand uniq unlink users vdir wc who whoami yes"
).split()
# What every stdenv derivation has on PATH (stdenv's initialPath and default inputs).
STDENV_NO_CC = COREUTILS + (
    "bash sh find xargs diff cmp diff3 sdiff sed grep egrep fgrep awk gawk tar gzip gunzip zcat "
    "bzip2 bunzip2 xz unxz make patch patchelf file"
).split()
# stdenv.cc: the C compiler wrapper and its bintools.
STDENV_CC = (
    "cc gcc c++ g++ cpp ld ld.bfd as ar nm objcopy objdump readelf strip ranlib strings size "
    "addr2line"
).split() + sorted(
    # Debian's ocamlopt calls the triplet names (x86_64-linux-gnu-as, -ar, -gcc); nixpkgs' calls
    # `as`, `ar` and `cc`. Same tools, host spelling.
    p.name for p in Path("/usr/bin").glob(f"{os.uname().machine}-linux-gnu-*")
)


def rust_toolchain_bins() -> list[str]:
    sysroot = subprocess.run(
        ["rustc", "--print", "sysroot"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return sorted(str(p) for p in Path(sysroot, "bin").iterdir())


HOST_TOOLS: dict[str, list[str]] = {
    "stdenv": STDENV_NO_CC,
    "pkg-config": ["pkg-config"],
    "maturin": ["maturin"],
    # Debian's valgrind is a script that runs "$0.bin"
    "valgrind": ["valgrind", "valgrind.bin", "vgdb"],
    "nix": ["nix", "nix-instantiate", "nix-store", "nix-build", "nix-env", "nix-hash"],
    "patchelf": ["patchelf"],
    "gcc": STDENV_CC,
    "cbindgen": ["cbindgen"],
    "git": ["git"],
    "procps": ["kill", "ps", "pgrep", "pkill"],
    # Debian installs it in /usr/sbin
    "nats-server": ["/usr/sbin/nats-server"],
    "openssl": ["openssl"],
    "ocamlPackages.findlib": ["ocamlfind"],
    "ocamlPackages.dune_3": ["dune"],
    # libraries: found through findlib (OCAMLPATH), no binaries
    "ocamlPackages.alcotest": [],
    "ocamlPackages.yojson": [],
    "ocamlPackages.lwt": [],
}
PYTHONS = {"python", "python3", "pythonTestEnv"}


def log(msg: str) -> None:
    print(f"nix-sandbox-sim: {msg}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


class Sim:
    def __init__(self, repo: Path, work: Path, venv: Path):
        self.repo = repo
        self.work = work
        self.store = work / "store"
        self.venv = venv
        self.missing_host: set[str] = set()

    # ---- evaluation -------------------------------------------------------
    def evaluate(self) -> dict:
        out = subprocess.run(
            [
                "nix-instantiate", "--store", "dummy://", "--eval", "--strict", "--json",
                "--arg", "store", json.dumps(str(self.store)),
                "--arg", "repo", str(self.repo),
                str(self.repo / "nix/sim/eval.nix"),
            ],
            capture_output=True, text=True, check=False,
            env={**os.environ, "NIX_STATE_DIR": str(self.work / "nix-state")},
        )
        if out.returncode != 0:
            raise SystemExit(f"nix-sandbox-sim: evaluating nix/sim/eval.nix failed:\n{out.stderr}")
        return json.loads(out.stdout)

    # ---- the store --------------------------------------------------------
    def tool_paths(self, name: str) -> list[Path]:
        if name == "ocamlPackages.ocaml":
            return sorted(p for p in Path("/usr/bin").glob("ocaml*") if p.name != "ocamlfind")
        if name in ("rustToolchain", "rustToolchainDev"):
            return [Path(p) for p in rust_toolchain_bins()]
        found = []
        for tool in HOST_TOOLS.get(name, []):
            if name == "maturin":
                path = self.venv / "bin/maturin"
                hit = str(path) if path.exists() else shutil.which(tool)
            else:
                hit = shutil.which(tool)
            if hit:
                found.append(Path(hit))
            else:
                self.missing_host.add(f"{tool} (for {name})")
        return found

    def make_bin(self, name: str, tools: list[Path], rename: dict[str, str] | None = None) -> None:
        bindir = self.store / name / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        for tool in tools:
            link = bindir / (rename or {}).get(tool.name, tool.name)
            if link.exists():
                continue
            real = Path(os.path.realpath(tool))
            if real.is_relative_to(self.repo):
                # the sandbox hides the repository's venv: a store path is a copy
                shutil.copy2(real, link)
            else:
                link.symlink_to(tool)

    def make_python(self, name: str, with_test_tools: bool) -> None:
        """A venv of the host interpreter; the test env sees the project venv's packages
        except mycelium_native (which only python-module may provide)."""
        prefix = self.store / name
        if (prefix / "bin/python3").exists():
            return
        base = Path(os.path.realpath(self.venv / "bin/python"))
        run([str(base), "-m", "venv", "--without-pip", str(prefix)])
        if with_test_tools:
            site = next((self.venv / "lib").glob("python3*/site-packages"))
            filtered = self.store / f"{name}-site"
            filtered.mkdir(exist_ok=True)
            for entry in site.iterdir():
                if entry.name.startswith(("mycelium_native", "mycelium_cli")) or entry.suffix == ".pth":
                    continue
                # copied: the sandbox hides the repository's venv
                run(["cp", "-a", str(entry), str(filtered / entry.name)])
            target_site = next((prefix / "lib").glob("python3*/site-packages"))
            (target_site / "sim-test-tools.pth").write_text(f"{filtered}\n")

    def make_package_inputs(self) -> None:
        """The flake's own packages, from the cargo target dir the suites already built."""
        ffi = self.store / "mycelium-ffi"
        if not ffi.exists():
            log("packages.mycelium-ffi: scripts/install-ffi.sh (debug build of target/)")
            run(["bash", "scripts/install-ffi.sh", str(ffi)], cwd=self.repo,
                env={**os.environ, "MYCELIUM_PROFILE": "debug"}, stdout=subprocess.DEVNULL)
        wheel_dir = self.store / "mycelium-python-wheel"
        if not wheel_dir.exists():
            log("packages.python-wheel: maturin build --release (reuses target/release)")
            run([str(self.venv / "bin/maturin"), "build", "--release", "--locked", "--offline",
                 "--compatibility", "linux", "--interpreter", str(self.venv / "bin/python"),
                 "-q", "--out", str(wheel_dir)], cwd=self.repo / "python")
        module = self.store / "mycelium-native-python"
        if not module.exists():
            log("packages.python-module: pip install --no-index --prefix of that wheel")
            wheels = sorted(wheel_dir.glob("*.whl"))
            run([str(self.venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps",
                 "--no-index", "--no-cache-dir", "--prefix", str(module), *map(str, wheels)])

    def provide(self, name: str) -> None:
        if (self.store / name).exists():
            return
        if name in PYTHONS:
            self.make_python(name, with_test_tools=name == "pythonTestEnv")
        elif name in ("mycelium-ffi", "mycelium-python-wheel", "mycelium-native-python"):
            self.make_package_inputs()
        else:
            self.make_bin(name, self.tool_paths(name))

    # ---- one check --------------------------------------------------------
    def inputs_of(self, check: dict) -> tuple[list[str], list[str]]:
        native = list(dict.fromkeys(check["nativeBuildInputs"] + check["packages"]))
        if check["kind"].startswith("crane"):
            native.append("rustToolchain")
        if check["kind"] in ("crane", "crane-deps", "stdenv", "mkShell"):
            native.append("gcc")  # stdenv.cc
        native.append("stdenv")
        return native, list(dict.fromkeys(check["buildInputs"]))

    def path_of(self, native: list[str]) -> str:
        return ":".join(str(self.store / n / "bin") for n in native)

    def provided_commands(self, check: dict) -> set[str]:
        native, _ = self.inputs_of(check)
        cmds: set[str] = set()
        for n in native:
            self.provide(n)
            bindir = self.store / n / "bin"
            if bindir.is_dir():
                cmds.update(p.name for p in bindir.iterdir())
        return cmds

    def hidden_paths(self) -> list[str]:
        """What the flake's source has not: .git, and every untracked or ignored path but target/."""
        out = subprocess.run(
            ["git", "ls-files", "--others", "--directory", "--no-empty-directory"],
            cwd=self.repo, capture_output=True, text=True, check=True,
        ).stdout.split("\n")
        hidden = [".git"] + [p.rstrip("/") for p in out if p and p.rstrip("/") != "target"]
        return hidden

    def run_check(self, name: str, check: dict, hidden: list[str], quiet: bool = False) -> tuple[bool, float]:
        native, libs = self.inputs_of(check)
        for n in native + libs:
            self.provide(n)
        cdir = self.work / "checks" / name
        if cdir.exists():
            run(["rm", "-rf", str(cdir)])
        for sub in ("upper-src", "work-src", "upper-cargo", "work-cargo", "tmp", "out"):
            (cdir / sub).mkdir(parents=True)
        for rel in hidden:
            whiteout = cdir / "upper-src" / rel
            whiteout.parent.mkdir(parents=True, exist_ok=True)
            os.mknod(whiteout, 0o600 | 0o020000, os.makedev(0, 0))  # overlayfs whiteout
        # cargo runs subcommands from $CARGO_HOME/bin before PATH: there the host has rustup's
        # proxies, which crane's CARGO_HOME has not.
        os.mknod(cdir / "upper-cargo" / "bin", 0o600 | 0o020000, os.makedev(0, 0))
        tmp, out = cdir / "tmp", cdir / "out"
        pkg_config_path = ":".join(str(self.store / n / "lib/pkgconfig") for n in libs)
        env = {
            # Sim-only: property tests with 1 000 cases instead of test-rust.sh's 10 000. CI ran
            # the full search in the plain suite minutes earlier; the sim is here to show the
            # check runs with only its inputs, not to repeat that search (~1 min of CI).
            # A derivation that sets PROPTEST_CASES itself keeps its value.
            "PROPTEST_CASES": os.environ.get("MYCELIUM_NIX_SIM_PROPTEST_CASES", "1000"),
            # test-all.sh builds target/ with CARGO_INCREMENTAL=0; the same here, or every
            # workspace crate is rebuilt into the overlay (crane's cargoArtifacts are reused
            # as they were built, too).
            **({"CARGO_INCREMENTAL": os.environ["CARGO_INCREMENTAL"]} if "CARGO_INCREMENTAL" in os.environ else {}),
            **check["env"],
            "PATH": self.path_of(native),
            "HOME": "/homeless-shelter",
            "TMPDIR": str(tmp), "TMP": str(tmp), "TEMP": str(tmp), "TEMPDIR": str(tmp),
            "NIX_BUILD_TOP": str(tmp),
            "out": str(out),
            "PKG_CONFIG_PATH": pkg_config_path,
            "NIX_BUILD_CORES": str(os.cpu_count() or 1),
            "TERM": "dumb",
            # crane points cargo at the vendored crates; here the host's (overlaid) CARGO_HOME.
            "CARGO_HOME": str(Path.home() / ".cargo"),
            "CARGO_NET_OFFLINE": "true",
            "SIM_CHECK": name,
            "BASH_FUNC_command_not_found_handle%%": (
                "() { printf 'nix-sandbox-sim: checks.%s wanted the command \"%s\", which no input "
                "of that derivation provides (nix/checks.nix; nix/sandbox_sim.py HOST_TOOLS)\\n' "
                "\"$SIM_CHECK\" \"$1\" >&2; return 127; }"
            ),
        }
        cargo_home = Path.home() / ".cargo"
        keep_rw = [str(self.repo), str(cargo_home), str(tmp), str(out), "/proc", "/sys", "/dev"]
        inner = f"""set -eu
ip link set lo up 2>/dev/null || true
mount -t overlay overlay -o lowerdir={self.repo},upperdir={cdir}/upper-src,workdir={cdir}/work-src {self.repo}
mount -t overlay overlay -o lowerdir={cargo_home},upperdir={cdir}/upper-cargo,workdir={cdir}/work-cargo {cargo_home}
mount --bind {tmp} {tmp}
mount --bind {out} {out}
awk '{{print $5}}' /proc/self/mountinfo | sort -u | while read -r mp; do
  case "$mp" in {'|'.join(f'{k}|{k}/*' for k in keep_rw)}) continue ;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || true
done
cd {self.repo}
exec /usr/bin/env -i "$@"
"""
        envargs = [f"{k}={v}" for k, v in env.items()]
        bash = str(self.store / "stdenv/bin/bash")
        cmd = ["unshare", "-m", "-n", "--propagation", "private", "bash", "-c", inner, "sim",
               *envargs, bash, "-eo", "pipefail", "-c", STDENV_PRELUDE + check["build"]]
        if not quiet:
            log(f"checks.{name}: running its build command in the sandbox")
        t0 = time.monotonic()
        done = subprocess.run(cmd, check=False, **({"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} if quiet else {}))
        return done.returncode == 0, time.monotonic() - t0


# stdenv's setup functions that the build commands call; hooks do nothing here.
STDENV_PRELUDE = "runHook() { :; }\n"


# ---- parse-based check ------------------------------------------------------
BUILTINS = set(
    "alias bg bind break builtin caller cd command compgen complete continue declare dirs disown "
    "echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local "
    "logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt source "
    "suspend test times trap true type typeset ulimit umask unalias unset wait . : [ [[ if then "
    "else elif fi for while until do done case esac in function select time { } ! coproc".split()
)
SOURCE_RE = re.compile(r'^\s*(?:source|\.)\s+"?\$\(dirname "\$0"\)/([^"\s]+)"?')
# `source "$repo/scripts/lib.sh"`, `source "$MYCELIUM_ROOT/scripts/lib.sh"`: relative to the root
ROOT_SOURCE_RE = re.compile(r'^\s*(?:source|\.)\s+"?\$\{?(?:repo|MYCELIUM_ROOT)\}?/([^"\s]+)"?')
CASE_PATTERN_RE = re.compile(r"^\s*[\w|*.-]+\)\s*")
CALL_RE = re.compile(r'\bbash\s+"?(?:\$MYCELIUM_ROOT/)?((?:scripts|tests)/[\w./-]+\.sh)')
FUNC_RE = re.compile(r"^([A-Za-z_][\w-]*)\s*\(\)\s*\{")


def logical_lines(text: str) -> list[str]:
    lines, cur = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.lstrip().startswith("#") and line.strip() != "# nix: unreachable":
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        lines.append(cur + line)
        cur = ""
    return lines


def strip_quoted(line: str) -> str:
    """Blanks quoted text but keeps command substitutions inside double quotes, and turns
    ${...} expansions into a plain $V."""
    out, i, quote, depth = [], 0, None, 0
    while i < len(line):
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = None
                out.append("''")
        elif quote == '"' and depth == 0:
            if c == "\\":
                i += 1
            elif c == '"':
                quote = None
                out.append('"V"')
            elif line.startswith("$(", i):
                depth = 1
                out.append(" ; ")
                i += 1
        else:
            if depth:
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if depth == 0:
                        out.append(" ; ")
                        i += 1
                        continue
            if quote is None and c in "'\"":
                quote = c
            elif c == "\\":
                i += 1
            else:
                out.append(c)
        i += 1
    return re.sub(r"\$\{[^}]*\}", "$V", "".join(out))


def commands_in(line: str) -> list[str]:
    line = CASE_PATTERN_RE.sub("", strip_quoted(line))
    line = re.sub(r"\s#.*$", "", line)
    parts = re.split(r"\$\(|\(|\)|;|&&|\|\||\||`|\bthen\b|\bdo\b|\belse\b|\{|\}|!", line)
    found = []
    for part in parts:
        words = part.split()
        while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=", words[0])
                         or words[0] in ("if", "while", "until", "exec", "time", "env", "command",
                                         "elif")):
            if words[0] == "command" and len(words) > 1 and words[1] == "-v":
                words = []
                break
            words = words[1:]
        if not words or words[0] in ("export", "local", "declare", "readonly", "unset"):
            continue
        w = words[0]
        if w.startswith(("$", '"', "'", "-", "<", ">", "[", "*")) or "=" in w or w.isdigit():
            continue
        if re.match(r"^[\w./+-]+$", w) and not w.startswith("./") and "/" not in w.rstrip("/"):
            found.append(w)
    return found


def nix_reachable(lines: list[str]) -> list[str]:
    """Drops what MYCELIUM_IN_NIX=1 never reaches: the rest of a function after
    `in_nix && return 0`, and the other branch of `if in_nix`/`if nix_wheel`."""
    keep, skip_fn, stack = [], False, []  # stack of (kind, skipping) for if-blocks on in_nix
    depth = 0
    for line in lines:
        s = line.strip()
        if FUNC_RE.match(s):
            depth, skip_fn = 1, False
            keep.append(line)
            continue
        if depth and s == "}":
            depth, skip_fn = 0, False
            continue
        if s == "# nix: unreachable":
            if depth:
                skip_fn = True
            continue
        if re.match(r"^in_nix && return 0$", s) or re.match(r"^if nix_wheel; then return 0; fi$", s):
            if depth:
                skip_fn = True
            continue
        m = re.match(r"^if (!\s*)?(in_nix|nix_wheel)\b.*; then$", s)
        if m:
            stack.append(["nix", bool(m.group(1))])  # skipping the then-part when negated
            continue
        if re.match(r"^if\b.*; then$", s) or s.startswith("if "):
            stack.append(["other", False])
        if stack and s == "else" and stack[-1][0] == "nix":
            stack[-1][1] = not stack[-1][1]
            continue
        if s == "fi" and stack:
            kind = stack.pop()[0]
            if kind == "nix":
                continue
        if skip_fn or any(k == "nix" and skipping for k, skipping in stack):
            continue
        if s.startswith("if nix_wheel; then") or s.startswith("if in_nix; then"):
            continue
        keep.append(line)
    return keep


def script_commands(repo: Path, script: str, seen: set[str] | None = None) -> dict[str, set[str]]:
    """command -> the scripts that call it, following `source .../lib*.sh` and `bash x.sh`."""
    seen = seen if seen is not None else set()
    if script in seen or not (repo / script).is_file():
        return {}
    seen.add(script)
    lines = logical_lines((repo / script).read_text())
    result: dict[str, set[str]] = {}
    functions = set()
    for line in lines:
        m = FUNC_RE.match(line.strip())
        if m:
            functions.add(m.group(1))
        src = SOURCE_RE.match(line)
        root_src = ROOT_SOURCE_RE.match(line)
        if src or root_src:
            sub = src.group(1) if src else root_src.group(1)
            sub = os.path.normpath(str(Path(script).parent / sub) if src else sub)
            for cmd, where in script_commands(repo, sub, seen).items():
                result.setdefault(cmd, set()).update(where)
        for call in CALL_RE.findall(line):
            for cmd, where in script_commands(repo, call, seen).items():
                result.setdefault(cmd, set()).update(where)
    for line in nix_reachable(lines):
        for cmd in commands_in(line):
            result.setdefault(cmd, set()).add(script)
    result.setdefault("__functions__", set()).update(functions)
    return result


def static_problems(sim: Sim, who: str, spec: dict, scripts: list[str], extra: tuple = ()) -> list[str]:
    provided = sim.provided_commands(spec) | set(extra)
    cmds: dict[str, set[str]] = {}
    for script in scripts:
        for cmd, where in script_commands(sim.repo, script).items():
            cmds.setdefault(cmd, set()).update(where)
    functions = cmds.pop("__functions__", set())
    problems = []
    for cmd, where in sorted(cmds.items()):
        if cmd in BUILTINS or cmd in functions or cmd in provided:
            continue
        problems.append(f"{who}: `{cmd}` (called by {', '.join(sorted(where))}) is provided by no input")
    return problems


# (what a script might do, build command, must it succeed): the sandbox's own test, run before
# the checks so that a passing check means something.
PROBES = [
    ("write $out and $TMPDIR", 'touch "$out/probe" "$TMPDIR/probe"', True),
    ("write the source copy", "touch probe-file", True),
    ("call git", "git --version", False),
    ("call apt-get", "apt-get --version", False),
    ("see .git in the source", "test -e .git", False),
    ("see the repository's venv", "test -e .venv", False),
    ("make HOME", 'mkdir -p "$HOME"', False),
    ("write outside $out and $TMPDIR", "touch /var/tmp/mycelium-sim-probe", False),
    ("write /tmp", "touch /tmp/mycelium-sim-probe", False),
    ("reach the network", "exec 3<>/dev/tcp/1.1.1.1/53", False),
]


def self_test(sim: "Sim", hidden: list[str]) -> list[str]:
    problems = []
    for what, cmd, should_pass in PROBES:
        probe = {"kind": "stdenvNoCC", "nativeBuildInputs": [], "buildInputs": [], "packages": [],
                 "env": {}, "build": cmd}
        ok, _ = sim.run_check("sandbox-probe", probe, hidden, quiet=True)
        if ok != should_pass:
            problems.append(f"sandbox self-test: a build that tries to {what} "
                            f"{'failed' if should_pass else 'succeeded'}")
    return problems


def suites_of(repo: Path) -> list[str]:
    m = re.search(r"^suites=\(([^)]*)\)", (repo / "scripts/test-all.sh").read_text(), re.M)
    if not m:
        raise SystemExit("nix-sandbox-sim: no suites=(...) in scripts/test-all.sh")
    return m.group(1).split()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "mycelium-nix-sim")
    ap.add_argument("--venv", type=Path, default=None, help="venv with the test tools and maturin (default <repo>/.venv)")
    ap.add_argument("--checks", default="", help="comma-separated suites to run (default: every suite of test-all.sh)")
    ap.add_argument("--skip", default="", help="comma-separated suites not to run (the parse check still covers them)")
    ap.add_argument("--static-only", action="store_true", help="only the parse-based check")
    args = ap.parse_args()
    repo = args.repo.resolve()
    venv = (args.venv or repo / ".venv").resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    sim = Sim(repo, args.work.resolve(), venv)
    # A fresh store every run: a wheel or library left from an earlier tree would test that tree.
    if sim.store.exists():
        run(["rm", "-rf", str(sim.store)])
    evaluated = sim.evaluate()
    checks = evaluated["checks"]
    suites = suites_of(repo)

    problems: list[str] = []
    for suite in suites:
        check = checks.get(suite)
        if check is None or f"scripts/test-{suite}.sh" not in check["build"]:
            problems.append(f"checks.{suite} is missing or does not run scripts/test-{suite}.sh")
            continue
        problems += static_problems(sim, f"checks.{suite}", check, [f"scripts/test-{suite}.sh"])
    # The dev shell's users run the README's commands: every suite and the demo.
    problems += static_problems(
        sim, "devShells.default", {**evaluated["devShell"], "kind": "mkShell"},
        [f"scripts/test-{s}.sh" for s in suites] + ["scripts/demo.sh"],
        # whoever runs `nix develop` has Nix on PATH, which the shell keeps
        extra=tuple(HOST_TOOLS["nix"]),
    )
    for p in problems:
        print(f"FAIL {p}")
    print(f"nix-sandbox-sim: parse check: {len(problems)} problem(s) over {len(suites)} checks and the dev shell")
    if args.static_only:
        return 1 if problems else 0

    skip = {s for s in args.skip.split(",") if s}
    wanted = [s for s in (args.checks.split(",") if args.checks else suites) if s and s not in skip]
    if skip:
        log(f"not run in the sandbox (--skip): {', '.join(sorted(skip))}")
    hidden = sim.hidden_paths()
    probe_problems = self_test(sim, hidden)
    for p in probe_problems:
        print(f"FAIL {p}")
    log(f"sandbox self-test: {len(PROBES) - len(probe_problems)} of {len(PROBES)} probes behaved")
    problems += probe_problems
    t0 = time.monotonic()
    sim.make_package_inputs()
    log(f"the flake's packages (inputs of the checks) made in {time.monotonic() - t0:.0f}s")
    results = []
    for suite in wanted:
        if suite not in checks:
            results.append((suite, False, 0.0))
            continue
        ok, secs = sim.run_check(suite, checks[suite], hidden)
        cdir = sim.work / "checks" / suite
        if ok:
            # what the check wrote through the overlay (copied-up target files: GBs for rust)
            run(["rm", "-rf", str(cdir)])
        log(f"checks.{suite}: {'passed' if ok else 'FAILED'} in {secs:.0f}s"
            + ("" if ok else f" (its writes are kept in {cdir}/upper-src, out and tmp)"))
        results.append((suite, ok, secs))
    if sim.missing_host:
        log("host binaries missing for the store (those inputs provide less here than in Nix): "
            + ", ".join(sorted(sim.missing_host)))
    failed = [s for s, ok, _ in results if not ok]
    log(f"{len(results) - len(failed)} checks passed, {len(failed)} failed"
        + (f" ({', '.join(failed)})" if failed else ""))
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
