"""The longest functions of the package and the example scripts at two revisions, in lines (the refactoring issues
report them): `python scripts/function_lengths.py BEFORE [AFTER]` (AFTER defaults to HEAD)."""

import ast
import subprocess
import sys

FOLDERS = ("modeling_ashnets", "examples")


def function_lengths(revision: str) -> dict[str, int]:
    """`file:Class.function` -> lines, for the top-level functions and methods of every Python file at `revision`."""
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", revision, *FOLDERS], capture_output=True,
                           text=True, check=True).stdout.split()
    lengths = {}
    for name in (n for n in names if n.endswith(".py")):
        tree = ast.parse(subprocess.run(["git", "show", f"{revision}:{name}"], capture_output=True, text=True,
                                        check=True).stdout)
        short = name.rsplit("/", 1)[-1]
        for node in tree.body:
            members = node.body if isinstance(node, ast.ClassDef) else [node]
            prefix = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
            for member in members:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lengths[f"{short}:{prefix}{member.name}"] = member.end_lineno - member.lineno + 1
    return lengths


if __name__ == "__main__":
    before, after = function_lengths(sys.argv[1]), function_lengths(sys.argv[2] if len(sys.argv) > 2 else "HEAD")
    for title, lengths, other, missing in (("before", before, after, "gone"), ("after", after, before, "new")):
        print(f"longest {title}:")
        for name, lines in sorted(lengths.items(), key=lambda item: -item[1])[:10]:
            print(f"  {lines:4d}  {name}  ({'after' if title == 'before' else 'before'}: {other.get(name, missing)})")
