"""No import cycle anywhere in the runtime packages ``streams/``, ``models/``, ``schemas/``,
nor between them.

:func:`import_graph` parses every module of the given packages with ``ast`` (nothing is
imported) and :func:`find_cycle` searches the graph.

What counts as an edge ``A -> B`` (both modules of the package):

* ``import B`` / ``from B import x`` / ``from B.x import y`` anywhere in ``A``, also inside
  functions (a lazy import still has to succeed when it runs); relative imports resolved;
* ``from P import name`` where ``P.name`` is a module: ``A -> P.name`` as well;
* importing ``P.Q.B`` first runs the ``__init__`` of ``P`` and ``P.Q``: ``A -> P`` and
  ``A -> P.Q`` for each such package that ``A`` is not itself inside (the one way a cycle
  hides behind a package ``__init__``);
* imports under ``if TYPE_CHECKING:`` are skipped (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNTIME_PACKAGES = ("streams", "models", "schemas")


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package_dir``."""
    root = package_dir.parent
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` except those in ``if TYPE_CHECKING:`` bodies."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        children: list[ast.AST] = list(node.orelse)
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        yield from _imports(child)


def _targets(statement: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Dotted names a statement in ``module`` imports (before filtering to the package)."""
    if isinstance(statement, ast.Import):
        return [alias.name for alias in statement.names]
    base = statement.module or ""
    if statement.level:  # relative: resolve against the importing module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - statement.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [base, *(f"{base}.{alias.name}" for alias in statement.names)]


def import_graph(*package_dirs: Path) -> dict[str, set[str]]:
    """Module -> the packages' modules it imports (see the module docstring)."""
    modules = {name: path for package_dir in package_dirs
               for name, path in module_names(package_dir).items()}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for statement in _imports(tree):
            for target in _targets(statement, name, path.name == "__init__.py"):
                if target not in modules or target == name:
                    continue
                graph[name].add(target)
                parts = target.split(".")
                for depth in range(1, len(parts)):
                    ancestor = ".".join(parts[:depth])
                    inside = name == ancestor or name.startswith(ancestor + ".")
                    if ancestor in modules and not inside:
                        graph[name].add(ancestor)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None when the graph is acyclic."""
    done: set[str] = set()  # modules whose every path was explored: no cycle through them
    for start in sorted(graph):
        if start in done:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]  # depth-first, iteratively
        while stack:
            step = next(stack[-1], None)
            if step is None:
                done.add(path.pop())
                stack.pop()
            elif step in path:
                return [*path[path.index(step) :], step]
            elif step not in done:
                path.append(step)
                stack.append(iter(sorted(graph[step])))
    return None


def test_the_runtime_packages_have_no_import_cycle() -> None:
    graph = import_graph(*(REPO / package for package in RUNTIME_PACKAGES))
    assert {"models.serving", "models.neural.training", "streams.app",
            "streams.state.agent", "schemas.events"} <= graph.keys()
    assert "streams.ops.web" in graph["streams.app"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_a_direct_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import x\n",
        "pkg/b.py": "def f():\n    from . import a\n",
    })
    assert find_cycle(import_graph(package)) in (["pkg.a", "pkg.b", "pkg.a"],
                                                 ["pkg.b", "pkg.a", "pkg.b"])


def test_a_cycle_behind_a_package_init_is_found(tmp_path: Path) -> None:
    """``pkg.train`` imports ``pkg.sub.base``, which runs ``pkg/sub/__init__.py``, which
    imports ``pkg.sub.adapter``, which imports ``pkg.train``: the cycle that
    ``models.training`` and ``models.neural`` had."""
    package = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/train.py": "from pkg.sub.base import Model\n",
        "pkg/sub/__init__.py": "from pkg.sub.adapter import Adapter\n",
        "pkg/sub/base.py": "class Model: ...\n",
        "pkg/sub/adapter.py": "from pkg.train import fit\n",
    })
    cycle = find_cycle(import_graph(package))
    assert cycle is not None and {"pkg.train", "pkg.sub", "pkg.sub.adapter"} <= set(cycle)


def test_type_checking_imports_and_acyclic_packages_pass(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "pkg/__init__.py": "from pkg import a\n",
        "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n",
        "pkg/b.py": "import pkg.a\nfrom .a import TYPE_CHECKING\n",
    })
    graph = import_graph(package)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": set(), "pkg.b": {"pkg.a"}}
    assert find_cycle(graph) is None
