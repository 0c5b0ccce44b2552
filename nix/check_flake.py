#!/usr/bin/env python3
"""Checks of the Nix packaging that need neither nixpkgs nor a binary cache.

Run by scripts/test-nix.sh (on a developer machine, in CI, and inside the
`nix` flake check). It can only see what is on disk: every .nix file must
parse, flake.lock must be a version 7 lock whose nodes match the inputs that
flake.nix declares (names, URLs, `follows`), every locked node must carry a
revision and a narHash of the right shape, the imports of nix/*.nix must pass
exactly the arguments those files take, and the rust-overlay pin must be newer
than the Rust release the flake asks for. Before trusting itself it breaks a
copy of the lock in several ways and makes sure each break is reported.

It cannot fetch anything, so it does not prove that the pinned revisions
exist or that their narHash values match their content; the summary says so.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

LOCK_VERSION = 7
NIX_TIMEOUT_S = 120
# Stable Rust ships every six weeks on a Thursday; 1.0 came out on Friday
# 2015-05-15, so the Thursday cadence is anchored one day earlier.
RUST_CADENCE_ANCHOR = dt.date(2015, 5, 14)
# lastModified is a commit time in seconds. Zero, a placeholder or a value in
# milliseconds lands outside this window and gives an invented pin away.
EARLIEST_PLAUSIBLE = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)

REV_RE = re.compile(r"^[0-9a-f]{40}$")
GITHUB_URL_RE = re.compile(
    r"^github:(?P<owner>[^/?]+)/(?P<repo>[^/?]+)(?:/(?P<ref>[^?]+))?(?:\?.*)?$"
)
IMPORT_CALL_RE = re.compile(r"import (?P<path>/[^\s{}()]+/nix/[A-Za-z0-9_.-]+\.nix) \{")
RUST_VERSION_RES = (
    re.compile(r'rust-bin\.stable\."(?P<v>\d+\.\d+\.\d+)"'),
    re.compile(r'rustVersion\s*=\s*"(?P<v>\d+\.\d+\.\d+)"'),
)


class NixError(Exception):
    """nix-instantiate failed; the message carries its stderr."""


@dataclass
class Report:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def check(self, what: str, problems: list[str]) -> None:
        if problems:
            self.failed.append(what)
            print(f"FAIL {what}")
            for problem in problems:
                print(f"       - {problem}")
        else:
            self.passed.append(what)
            print(f"ok   {what}")


def nix_instantiate(args: list[str], cwd: Path) -> str:
    # The dummy store lets parsing and pure evaluation run without /nix/var, a
    # daemon or network: inside the build sandbox none of them exist.
    cmd = ["nix-instantiate", "--store", "dummy://", *args]
    try:
        done = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=NIX_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise NixError(f"`{' '.join(cmd)}` did not finish within {NIX_TIMEOUT_S}s") from err
    if done.returncode != 0:
        raise NixError(done.stderr.strip() or f"`{' '.join(cmd)}` exited {done.returncode}")
    return done.stdout


def nix_eval_json(expr: str, cwd: Path):
    return json.loads(nix_instantiate(["--eval", "--strict", "--json", "--expr", expr], cwd))


# --- flake.lock --------------------------------------------------------------


def nar_hash_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value.startswith("sha256-"):
        return f"narHash {value!r} is not of the form sha256-<base64>"
    try:
        digest = base64.b64decode(value[len("sha256-") :], validate=True)
    except binascii.Error:
        return f"narHash {value!r} is not valid base64"
    if len(digest) != 32:
        return f"narHash {value!r} decodes to {len(digest)} bytes, a SHA-256 has 32"
    return None


def last_modified_problem(value: object, now: dt.datetime | None) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return f"lastModified {value!r} is not an integer timestamp"
    when = dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    latest = now + dt.timedelta(days=1) if now is not None else None
    if when < EARLIEST_PLAUSIBLE or (latest is not None and when > latest):
        return f"lastModified {value} ({when:%Y-%m-%d}) is not a plausible commit time"
    return None


def locked_node_problems(name: str, node: dict, now: dt.datetime | None) -> list[str]:
    problems = []
    locked = node.get("locked")
    if not isinstance(locked, dict):
        return [f"node {name!r} has no `locked` entry"]
    if not isinstance(node.get("original"), dict):
        problems.append(f"node {name!r} has no `original` entry")
    kind = locked.get("type")
    if kind == "github":
        for key in ("owner", "repo"):
            if not isinstance(locked.get(key), str) or not locked[key]:
                problems.append(f"node {name!r}: locked.{key} is missing")
    needs_rev = kind in ("github", "git") or "rev" in locked
    if needs_rev and not REV_RE.match(str(locked.get("rev", ""))):
        problems.append(f"node {name!r}: rev {locked.get('rev')!r} is not a 40-hex-digit commit")
    for problem in (
        nar_hash_problem(locked.get("narHash")),
        last_modified_problem(locked.get("lastModified"), now),
    ):
        if problem:
            problems.append(f"node {name!r}: {problem}")
    if kind is None:
        problems.append(f"node {name!r}: locked.type is missing")
    return problems


def resolve_follows(nodes: dict, root: str, path: list[str]) -> str:
    """Follow an input path (as written in `follows`) from the root node."""
    current = root
    for depth, step in enumerate(path):
        if depth > 32:
            raise KeyError(f"follows path {'/'.join(path)} is too deep (a cycle?)")
        ref = nodes.get(current, {}).get("inputs", {}).get(step)
        if ref is None:
            raise KeyError(f"node {current!r} has no input {step!r}")
        current = ref if isinstance(ref, str) else resolve_follows(nodes, root, ref)
    return current


def github_original_problems(name: str, url: str, node: dict) -> list[str]:
    match = GITHUB_URL_RE.match(url)
    if not match:
        return []
    original = node.get("original", {})
    expected = {"type": "github", "owner": match["owner"], "repo": match["repo"]}
    if match["ref"]:
        expected["ref"] = match["ref"]
    problems = []
    for key, want in expected.items():
        if original.get(key) != want:
            problems.append(
                f"input {name!r}: flake.nix says {key}={want!r} but the lock's original has "
                f"{original.get(key)!r}; nix would re-lock (and fetch) instead of using the pin"
            )
    if "ref" not in expected and "ref" in original:
        problems.append(
            f"input {name!r}: the lock pins ref {original['ref']!r}, flake.nix names none"
        )
    return problems


def lock_problems(lock: object, declared: dict, now: dt.datetime | None) -> list[str]:
    """Everything wrong with `lock` given the inputs flake.nix declares."""
    if not isinstance(lock, dict):
        return ["flake.lock is not a JSON object"]
    problems = []
    if lock.get("version") != LOCK_VERSION:
        problems.append(f"version is {lock.get('version')!r}, expected {LOCK_VERSION}")
    nodes = lock.get("nodes")
    root = lock.get("root")
    if not isinstance(nodes, dict) or root not in nodes:
        return problems + [f"root node {root!r} is missing from `nodes`"]

    root_inputs = nodes[root].get("inputs", {})
    for name in sorted(set(declared) - set(root_inputs)):
        problems.append(f"input {name!r} is declared in flake.nix but has no entry in the lock")
    for name in sorted(set(root_inputs) - set(declared)):
        problems.append(f"the lock has input {name!r}, which flake.nix does not declare")

    reachable = {root}
    for name, node in nodes.items():
        if name == root:
            continue
        problems += locked_node_problems(name, node, now)
        for input_name, ref in node.get("inputs", {}).items():
            try:
                target = ref if isinstance(ref, str) else resolve_follows(nodes, root, ref)
            except KeyError as err:
                problems.append(f"node {name!r}, input {input_name!r}: {err.args[0]}")
                continue
            if target not in nodes:
                problems.append(
                    f"node {name!r}, input {input_name!r} points at missing node {target!r}"
                )

    # Reachability from the root: a node nothing refers to is a leftover.
    frontier = [root]
    while frontier:
        current = frontier.pop()
        for ref in nodes.get(current, {}).get("inputs", {}).values():
            if isinstance(ref, str) and ref in nodes and ref not in reachable:
                reachable.add(ref)
                frontier.append(ref)
    for name in sorted(set(nodes) - reachable):
        problems.append(f"node {name!r} is not reachable from the root")

    for name, spec in declared.items():
        ref = root_inputs.get(name)
        if ref is None:
            continue
        if "follows" in spec:
            if ref != spec["follows"].split("/"):
                problems.append(
                    f"input {name!r} should follow {spec['follows']!r}, lock has {ref!r}"
                )
            continue
        if not isinstance(ref, str) or ref not in nodes:
            problems.append(f"input {name!r} points at missing node {ref!r}")
            continue
        node = nodes[ref]
        if "url" in spec:
            problems += github_original_problems(name, spec["url"], node)
        if spec.get("flake") is False and node.get("flake") is not False:
            problems.append(f"input {name!r} is `flake = false` but its lock node is a flake")
        declared_subs = spec.get("inputs", {})
        for sub, have in node.get("inputs", {}).items():
            # A follows path is absolute from the root; one that does not start
            # at this input came from flake.nix, not from the input's own flake.
            undeclared = "follows" not in declared_subs.get(sub, {})
            if undeclared and isinstance(have, list) and have[:1] != [name]:
                problems.append(
                    f"input {name!r}: the lock makes its input {sub!r} follow {'/'.join(have)!r}, "
                    "flake.nix does not say so; nix would re-lock (and fetch)"
                )
        for sub, sub_spec in declared_subs.items():
            if "follows" not in sub_spec:
                continue
            want = sub_spec["follows"].split("/") if sub_spec["follows"] else []
            have = node.get("inputs", {}).get(sub)
            if have != want:
                problems.append(
                    f"input {name!r}: inputs.{sub}.follows = {sub_spec['follows']!r} in flake.nix, "
                    f"the lock has {have!r}"
                )
    return problems


def lock_mutations(lock: dict) -> dict[str, dict]:
    """Broken copies of a good lock; the checker must flag each of them."""
    nodes = lock["nodes"]
    root_inputs = nodes[lock["root"]]["inputs"]
    first = next(iter(root_inputs.values()))
    pinned = [n for n, v in nodes.items() if "locked" in v]
    follower = next(
        (
            n
            for n, v in nodes.items()
            if any(isinstance(r, list) for r in v.get("inputs", {}).values())
        ),
        None,
    )

    def mutate(change):
        broken = copy.deepcopy(lock)
        change(broken)
        return broken

    cases = {
        "lock version 6": mutate(lambda b: b.update(version=6)),
        "a declared input's node deleted": mutate(lambda b: b["nodes"].pop(first)),
        "an undeclared root input": mutate(
            lambda b: b["nodes"][b["root"]]["inputs"].update(stray=pinned[0])
        ),
        "a truncated narHash": mutate(
            lambda b: b["nodes"][pinned[0]]["locked"].update(
                narHash=b["nodes"][pinned[0]]["locked"]["narHash"][:-8]
            )
        ),
        "a non-hex rev": mutate(lambda b: b["nodes"][pinned[-1]]["locked"].update(rev="main")),
        "a missing lastModified": mutate(
            lambda b: b["nodes"][pinned[0]]["locked"].pop("lastModified")
        ),
        "an orphan node": mutate(
            lambda b: b["nodes"].update(orphan=copy.deepcopy(b["nodes"][pinned[0]]))
        ),
        "an original ref that flake.nix does not name": mutate(
            lambda b: b["nodes"][pinned[0]]["original"].update(ref="no-such-branch")
        ),
    }
    if follower:
        sub = next(k for k, r in nodes[follower]["inputs"].items() if isinstance(r, list))
        cases["a follows pointing elsewhere"] = mutate(
            lambda b: b["nodes"][follower]["inputs"].update({sub: ["no-such-input"]})
        )
    return cases


# --- nix/*.nix call sites ------------------------------------------------------


def attrset_names(text: str, start: int) -> list[str]:
    """Top-level attribute names of the attrset opening at text[start] == '{',
    in the normalised syntax that `nix-instantiate --parse` prints."""
    names, depth, i, expect_name = [], 0, start, False
    while i < len(text):
        char = text[i]
        if char == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif char in "{([":
            depth += 1
            expect_name = depth == 1
        elif char in "})]":
            depth -= 1
            if depth == 0:
                return names
        elif char == ";" and depth == 1:
            expect_name = True
        elif depth == 1 and expect_name and not char.isspace():
            token = re.match(r"[A-Za-z_][A-Za-z0-9_'-]*", text[i:])
            if token and token.group() == "inherit":
                end = text.index(";", i)
                clause = re.sub(r"\([^)]*\)", " ", text[i + len("inherit") : end])
                names += clause.split()
                i = end
                continue
            if token:
                names.append(token.group())
            expect_name = False
        i += 1
    return names


def matrix_problems(parsed_checks: str, test_all: str, repo: Path) -> tuple[list[str], str]:
    """The flake's script checks (`matrix` in nix/checks.nix, plus `inherit nix`) against the
    suites .ci/run runs (`suites=(...)` in scripts/test-all.sh): one definition of the matrix
    only holds if both name the same suites and every scripts/test-<name>.sh exists."""
    problems: list[str] = []
    start = parsed_checks.find("matrix = {")
    if start < 0:
        return ["no `matrix = { ... }` in nix/checks.nix; the pattern is out of date"], "?"
    flake = set(attrset_names(parsed_checks, start + len("matrix = ")))
    if re.search(r"\binherit nix\b", parsed_checks):
        flake.add("nix")
    found = re.search(r"^suites=\(([^)]*)\)", test_all, re.M)
    if not found:
        return ["no `suites=(...)` in scripts/test-all.sh; the pattern is out of date"], "?"
    ci = set(found.group(1).split())
    problems += [f"checks.{n} has no suite in scripts/test-all.sh" for n in sorted(flake - ci)]
    problems += [f"suite {n} of scripts/test-all.sh is no flake check" for n in sorted(ci - flake)]
    problems += [
        f"scripts/test-{n}.sh is missing"
        for n in sorted(flake | ci)
        if not (repo / "scripts" / f"test-{n}.sh").is_file()
    ]
    return problems, ", ".join(sorted(flake & ci))


def has_ellipsis(parsed: str) -> bool:
    """Whether the function a file evaluates to accepts `...`: its formals end
    at the first `}:` of the normalised text that `nix-instantiate --parse` prints."""
    header = parsed[: parsed.find("}:")]
    return re.search(r"[{,]\s*\.\.\.\s*$", header) is not None


def call_site_problems(
    parsed_by_file: dict[str, str], formals_by_file: dict[str, tuple]
) -> tuple[int, list[str]]:
    """(number of call sites seen, problems) for every `import ./nix/X.nix { ... }`."""
    problems, calls = [], 0
    for caller, text in parsed_by_file.items():
        for match in IMPORT_CALL_RE.finditer(text):
            calls += 1
            callee = Path(match["path"]).name
            if callee not in formals_by_file:
                problems.append(
                    f"{caller} imports nix/{callee}, which does not exist or is not a function"
                )
                continue
            required, optional, open_ended = formals_by_file[callee]
            given = set(attrset_names(text, match.end() - 1))
            for name in sorted(required - given):
                problems.append(f"{caller} calls nix/{callee} without its argument {name!r}")
            if not open_ended:
                for name in sorted(given - required - optional):
                    problems.append(
                        f"{caller} passes {name!r} to nix/{callee}, which does not take it"
                    )
    return calls, problems


# --- the Rust pin ----------------------------------------------------------------


def rust_release_date(version: str) -> dt.date | None:
    major, minor, _patch = (int(p) for p in version.split("."))
    if major != 1:
        return None
    return RUST_CADENCE_ANCHOR + dt.timedelta(weeks=6 * minor)


def rust_pin_problems(sources: dict[str, str], lock: dict) -> tuple[list[str], str]:
    versions = {
        m["v"] for text in sources.values() for r in RUST_VERSION_RES for m in r.finditer(text)
    }
    if not versions:
        return [], 'no rust-bin.stable."X.Y.Z" pin found; nothing to compare'
    overlay = [
        n
        for n in lock.get("nodes", {}).values()
        if n.get("locked", {}).get("repo") == "rust-overlay"
    ]
    if not overlay:
        return [
            f"the flake asks for Rust {', '.join(sorted(versions))} "
            "but the lock has no rust-overlay node"
        ], ""
    pinned = dt.datetime.fromtimestamp(
        overlay[0]["locked"].get("lastModified", 0), tz=dt.timezone.utc
    ).date()
    problems = []
    for version in sorted(versions):
        released = rust_release_date(version)
        if released and pinned < released:
            problems.append(
                f"Rust {version} was released on {released}, after the rust-overlay pin "
                f'({pinned}): rust-bin.stable."{version}" would not exist; '
                "update the rust-overlay input"
            )
    return problems, f"Rust {', '.join(sorted(versions))}; rust-overlay pinned {pinned}"


# --- what Nix itself says ----------------------------------------------------------


def flake_metadata_problems(repo: Path, lock: dict) -> list[str]:
    """Ask Nix to load the flake with the lock as it is. A lock that does not
    match flake.nix makes Nix re-lock, which needs the network and is refused
    by --no-update-lock-file; a matching lock loads without fetching anything.
    Only the packaging files are copied, into a throwaway store."""
    scratch = tempfile.mkdtemp(prefix="test-nix-")
    try:
        return _flake_metadata_problems(repo, lock, scratch)
    finally:
        # Nix leaves its store read-only; without write permission back a
        # non-root user (the sandbox's build user) could not delete it.
        for path in [Path(scratch), *Path(scratch).rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o700)
        shutil.rmtree(scratch, ignore_errors=True)


def _flake_metadata_problems(repo: Path, lock: dict, scratch: str) -> list[str]:
    flake = Path(scratch, "flake")
    (flake / "nix").mkdir(parents=True)
    for name in ("flake.nix", "flake.lock"):
        (flake / name).write_bytes((repo / name).read_bytes())
    for path in (repo / "nix").glob("*.nix"):
        (flake / "nix" / path.name).write_bytes(path.read_bytes())
    cmd = [
        "nix", "--extra-experimental-features", "nix-command flakes",
        "--store", str(Path(scratch, "store")), "--offline",
        "flake", "metadata", "--no-update-lock-file", "--json", f"path:{flake}",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=NIX_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return [f"`nix flake metadata` did not finish within {NIX_TIMEOUT_S}s"]
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no output)"]
        first_error = next((ln for ln in lines if ln.startswith("error:")), lines[0])
        return [f"nix could not load the flake with this lock without re-locking: {first_error}"]
    locks = json.loads(done.stdout).get("locks")
    if locks != lock:
        return ["nix loaded the flake but reports a lock different from flake.lock"]
    return []


# --- driver ----------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    # The caller passes the clock: a derivation must not read it (its result would depend on
    # when it was built). Without --now only the lower bound of lastModified is checked.
    parser.add_argument("--now", type=int, help="current time, seconds since the epoch")
    args = parser.parse_args()
    repo: Path = args.repo.resolve()
    report = Report()
    now = dt.datetime.fromtimestamp(args.now, tz=dt.timezone.utc) if args.now is not None else None

    nix_files = [repo / "flake.nix", *sorted((repo / "nix").glob("*.nix"))]
    parsed: dict[str, str] = {}
    raw: dict[str, str] = {}
    for path in nix_files:
        rel = str(path.relative_to(repo))
        try:
            parsed[rel] = nix_instantiate(["--parse", str(path)], repo)
            raw[rel] = path.read_text()
            report.check(f"{rel} parses", [])
        except (NixError, OSError) as err:
            report.check(f"{rel} parses", [str(err)])

    with tempfile.TemporaryDirectory() as scratch:
        broken = Path(scratch, "broken.nix")
        broken.write_text("{ inputs = { nixpkgs.url = ; }; }\n")
        try:
            nix_instantiate(["--parse", str(broken)], repo)
            report.check(
                "a file with a syntax error is rejected", ["nix-instantiate --parse accepted it"]
            )
        except NixError:
            report.check("a file with a syntax error is rejected", [])

    try:
        declared = nix_eval_json("(import ./flake.nix).inputs", repo)
        outputs_formals = nix_eval_json("builtins.functionArgs (import ./flake.nix).outputs", repo)
    except (NixError, json.JSONDecodeError) as err:
        report.check("flake.nix evaluates to { inputs, outputs }", [str(err)])
        declared, outputs_formals = None, None

    try:
        lock = json.loads((repo / "flake.lock").read_text())
    except (OSError, json.JSONDecodeError) as err:
        report.check("flake.lock is valid JSON", [str(err)])
        lock = None

    if declared is not None:
        problems = [
            f"outputs takes {name!r}, which is not an input"
            for name in sorted(set(outputs_formals) - set(declared) - {"self"})
        ]
        outputs_match = re.search(r"outputs = \(\{(?P<f>[^{}]*)\}:", parsed.get("flake.nix", ""))
        if outputs_match and "..." not in outputs_match["f"]:
            problems += [
                f"input {name!r} is not an argument of outputs (and outputs has no `...`)"
                for name in sorted(set(declared) - set(outputs_formals))
            ]
        report.check("outputs takes exactly the declared inputs", problems)

    if declared is not None and lock is not None:
        problems = lock_problems(lock, declared, now)
        report.check(
            f"flake.lock matches flake.nix ({len(declared)} inputs, version {LOCK_VERSION})",
            problems,
        )
        if not problems:
            missed = [
                what
                for what, broken_lock in lock_mutations(lock).items()
                if not set(lock_problems(broken_lock, declared, now))
            ]
            report.check(
                "the lock check flags every deliberately broken copy of the lock",
                [f"not flagged: {what}" for what in missed],
            )

    formals_by_file = {}
    for rel, text in parsed.items():
        if not rel.startswith("nix/"):
            continue
        try:
            # {name: has_default} of the function the file evaluates to.
            formals = nix_eval_json(f"builtins.functionArgs (import ./{rel})", repo)
        except (NixError, json.JSONDecodeError):
            continue
        required = {name for name, has_default in formals.items() if not has_default}
        formals_by_file[Path(rel).name] = (required, set(formals) - required, has_ellipsis(text))
    calls, problems = call_site_problems(parsed, formals_by_file)
    if calls == 0 and "flake.nix" in parsed:
        problems.append(
            "found no `import ./nix/*.nix { ... }` in the parsed files; the pattern is out of date"
        )
    report.check(
        f"each of the {calls} imports of nix/*.nix passes exactly the arguments it takes", problems
    )

    if "nix/checks.nix" in parsed and (repo / "scripts" / "test-all.sh").is_file():
        test_all = (repo / "scripts" / "test-all.sh").read_text()
        problems, names = matrix_problems(parsed["nix/checks.nix"], test_all, repo)
        report.check(f"the flake's checks and .ci/run run the same suites ({names})", problems)
        if not problems:
            broken = {
                "a suite only .ci/run runs": test_all.replace("suites=(", "suites=(extra "),
                "a flake check .ci/run skips": re.sub(r"^suites=\(rust ", "suites=(", test_all, flags=re.M),
            }
            missed = [
                what
                for what, text in broken.items()
                if text == test_all or not matrix_problems(parsed["nix/checks.nix"], text, repo)[0]
            ]
            report.check(
                "the suite check flags a suite added to, or dropped from, one side only",
                [f"not flagged: {what}" for what in missed],
            )

    if lock is not None and shutil.which("nix"):
        report.check(
            "nix loads the flake offline with flake.lock as is "
            "(nix flake metadata --no-update-lock-file)",
            flake_metadata_problems(repo, lock),
        )
    elif lock is not None:
        print(
            "skip nix flake metadata: no `nix` command on PATH "
            "(nix-instantiate alone cannot load flakes)"
        )

    if lock is not None:
        problems, detail = rust_pin_problems(raw, lock)
        report.check(f"the rust-overlay pin knows the Rust toolchain ({detail})", problems)

    print()
    print(f"test-nix: {len(report.passed)} passed, {len(report.failed)} failed")
    print("Not verified here (no nixpkgs, no binary cache, no network):")
    print("  - that the pinned revisions exist and that their narHash values match their content")
    print("    (the pins were copied from public flake.lock files; docs/nix.md names them);")
    print("  - evaluation of packages/checks/devShells (nixpkgs attribute names, crane arguments);")
    print("  - building any derivation: mycelium-ffi, python-wheel, ocaml, the script checks.")
    print("  Those need `nix flake check` on a machine with Nix and network access (docs/nix.md).")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
