"""The core is a framework: it imports no head and no plugin, and its modules form no cycle.

Every import counts, at module level or inside a function: a lazy import is still a
dependency. Deprecated shims that only forward an old path are listed and skipped.
"""
from __future__ import annotations

import ast
from pathlib import Path

import tunehub

ROOT = Path(tunehub.__file__).parent
SHIMS = {"tunehub.core.classification"}  # forwards to tunehub.plugins.classification.head


def module_name(path: Path) -> str:
    parts = ["tunehub", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def core_modules() -> dict[str, Path]:
    return {module_name(p): p for p in (ROOT / "core").rglob("*.py") if module_name(p) not in SHIMS}


def test_core_imports_no_head_and_no_plugin():
    offenders = {name: sorted(i for i in imports_of(path) if i.startswith("tunehub.plugins"))
                 for name, path in core_modules().items()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_core_modules_have_no_import_cycle():
    modules = core_modules()
    graph = {name: {i for i in imports_of(path) if i in modules and i != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [])
            assert cycle is None, " -> ".join(cycle[cycle.index(cycle[-1]):])


def test_the_old_classification_path_still_works_with_a_warning():
    import warnings

    import tunehub.core.classification as old

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        head_class = old.SequenceClassificationHead
    from tunehub.plugins.classification.head import SequenceClassificationHead

    assert head_class is SequenceClassificationHead
    assert any(issubclass(w.category, DeprecationWarning) and "moved" in str(w.message) for w in caught)


def test_plugin_api_module_imports_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys, tunehub.plugin as api; "
            "print(sorted(m for m in ('torch', 'transformers', 'faiss') if m in sys.modules)); "
            "print(all(hasattr(api, n) for n in api.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"]
