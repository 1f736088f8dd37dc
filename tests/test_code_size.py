"""Size limits of the source (issue 16): no file in src/ over 500 lines, no function over 80 lines.

Long pieces hide several ideas; these limits keep each module to one idea and each function to
named steps. Lines are counted as the file has them (docstrings and comments included), a
function from its ``def`` to its last line (nested functions count in their parent too).
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "napari_synthseg"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80

# Nothing is allowed over the limits: add an entry here only with a comment saying why.
FILES_OVER_LIMIT: set[str] = set()
FUNCTIONS_OVER_LIMIT: set[str] = set()


def _sources() -> dict[str, str]:
    return {path.relative_to(SOURCE).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(SOURCE.rglob("*.py"))}


def _function_lengths(text: str) -> dict[str, int]:
    """``Class.method`` / ``function`` -> lines from its ``def`` (decorators excluded) to its end."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                lengths[name] = max(lengths.get(name, 0), child.end_lineno - child.lineno + 1)
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(text), "")
    return lengths


def long_files(sources: dict[str, str]) -> dict[str, int]:
    return {name: len(text.splitlines()) for name, text in sources.items()
            if len(text.splitlines()) > MAX_FILE_LINES}


def long_functions(sources: dict[str, str]) -> dict[str, int]:
    return {f"{name}:{function}": length for name, text in sources.items()
            for function, length in _function_lengths(text).items() if length > MAX_FUNCTION_LINES}


def test_no_source_file_is_over_500_lines():
    found = long_files(_sources())
    too_long = {name: n for name, n in found.items() if name not in FILES_OVER_LIMIT}
    assert not too_long, f"split these files by idea (at most {MAX_FILE_LINES} lines): {too_long}"


def test_no_function_is_over_80_lines():
    found = long_functions(_sources())
    too_long = {name: n for name, n in found.items() if name not in FUNCTIONS_OVER_LIMIT}
    assert not too_long, f"split these functions into named steps (at most {MAX_FUNCTION_LINES} lines): {too_long}"


def test_the_limits_are_measured_on_real_code():
    """The counting itself: a long function (also a method) and a long file are found."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    method_body = "\n".join("    " + line for line in body.splitlines())
    text = f"def long():\n{body}\n\n\nclass C:\n    def method(self):\n{method_body}\n\n\ndef short():\n    return 1\n"
    found = long_functions({"made.py": text})
    assert found == {"made.py:long": MAX_FUNCTION_LINES + 1, "made.py:C.method": MAX_FUNCTION_LINES + 1}
    assert long_files({"made.py": "x = 1\n" * (MAX_FILE_LINES + 1)}) == {"made.py": MAX_FILE_LINES + 1}
    assert not long_files({"made.py": "x = 1\n" * MAX_FILE_LINES})
