"""The project's source files a module runs: the module and, transitively, every torchkata module it imports.

An exercise's result depends on more than its experiment and its reference: on the training loop, the data
reader, the shared modules they import. Snakemake's run rules and DVC's stages take these files as inputs, so
an edit to a shared module reruns exactly the exercises that import it, and a lock can not go stale.

Imports are read from the source (ast), not by importing: the DAG is built without torch. Only absolute imports
of the `torchkata` package are followed (the project uses no relative imports), including imports inside
functions, which run too. A package's __init__.py is not counted for the modules below it: they hold only a
docstring (tests/pipeline/test_imports.py holds both).
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "torchkata"
# the machinery every run goes through, not followed: what of it can change a result is workflow.RUNNER_CODE,
# a dependency of every run already (following it would make an edit to the catalog's loader rerun everything)
MACHINERY = "torchkata.pipeline"


def _module_path(root: Path, module: str) -> Path | None:
    """src/a/b.py or src/a/b/__init__.py for module `a.b`, relative to root; None if it is not a project file."""
    base = Path("src", *module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if (root / path).is_file():
            return path
    return None


def _imported_modules(root: Path, path: Path) -> set[str]:
    """The torchkata modules that the file at `path` imports (`from a import b` counts b where b is a module)."""
    try:
        tree = ast.parse((root / path).read_text(), filename=str(path))
    except SyntaxError as err:
        raise SyntaxError(f"{path}: cannot read its imports: {err}") from err
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == PACKAGE:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names
                      if _module_path(root, f"{node.module}.{alias.name}") is not None}
    return found


@functools.cache
def source_files(root: Path, path: str) -> tuple[str, ...]:
    """`path` (relative to root) and the project files of every torchkata module it imports, transitively
    (not through torchkata.pipeline); sorted after `path`, each once."""
    seen, todo = {Path(path)}, [Path(path)]
    while todo:
        for module in _imported_modules(root, todo.pop()):
            if module == MACHINERY or module.startswith(MACHINERY + "."):
                continue
            found = _module_path(root, module)
            if found is not None and found not in seen:
                seen.add(found)
                todo.append(found)
    return (path, *sorted(str(p) for p in seen if p != Path(path)))
