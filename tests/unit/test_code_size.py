"""Functions a reader can take in at once: none in submitter/ over 60 lines, no class over 300."""

from __future__ import annotations

import ast
from pathlib import Path

import submitter

PACKAGE = Path(submitter.__file__).parent
MAX_FUNCTION = 60
MAX_CLASS = 300


def _over() -> set[str]:
    over = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                if lines > limit:
                    over.add(f"{where}: {kind} {node.name}")
    return over


def test_no_function_or_class_is_too_long() -> None:
    assert _over() == set()
