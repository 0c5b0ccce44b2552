#!/usr/bin/env python3
"""Prints the one fenced code block of README.md written in LANG (```LANG ... ```), so that the
test scripts can build and run the README's "Twenty lines per language" snippets and the README
cannot drift from the API. Fails if there is not exactly one such block."""

import argparse
import re
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lang", help="the block's language tag: rust, c, python, ocaml")
    parser.add_argument("--readme", type=Path, default=Path(__file__).resolve().parent.parent / "README.md")
    args = parser.parse_args()
    text = args.readme.read_text()
    blocks = re.findall(rf"^```{re.escape(args.lang)}\n(.*?)^```$", text, re.M | re.S)
    if len(blocks) != 1:
        print(f"readme_snippet: expected one ```{args.lang} block in {args.readme}, found {len(blocks)}", file=sys.stderr)
        return 1
    sys.stdout.write(blocks[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
