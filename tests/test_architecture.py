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


PUBLIC = {"tunehub.plugin", "tunehub.plugin.lora", "tunehub.plugin.biencoder",
          "tunehub.plugin.index", "tunehub.plugin.ranking"}


def test_builtin_plugins_import_only_the_public_surface():
    """What docs/heads.md calls off-limits to plugin authors is off-limits to the built-ins."""
    offenders = {}
    for path in (ROOT / "plugins").rglob("*.py"):
        name = module_name(path)
        own = ".".join(name.split(".")[:3])  # tunehub.plugins.<plugin>
        bad = sorted(i for i in imports_of(path) if i.startswith("tunehub")
                     and not i.startswith(own) and i.rsplit(".", 1)[0] not in PUBLIC
                     and i not in PUBLIC)
        if bad:
            offenders[name] = bad
    assert offenders == {}


def _builtin_names() -> set[str]:
    from tunehub.core.extending.plugins import load_catalog

    catalog = load_catalog()
    return {*catalog.items["heads"], *catalog.items["tasks"]}


def test_core_names_no_head_and_no_task_in_its_logic():
    """No comparison or lookup in the core mentions a built-in head or task by name (help
    texts and examples may); the default-plugin list names plugins, not heads."""
    names = _builtin_names()
    offenders = []
    for module, path in core_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            values = []
            if isinstance(node, ast.Compare):
                values = [node.left, *node.comparators]
            elif isinstance(node, ast.Subscript):
                values = [node.slice]
            found = [v.value for v in values if isinstance(v, ast.Constant) and v.value in names]
            offenders += [f"{module}:{node.lineno} {name}" for name in found]
    assert offenders == []


HEAD_MEMBERS = {"load", "predict", "evaluate", "export", "example_inputs", "training_texts",
                "row_keys", "corrections", "join_feedback", "monitor_outputs", "paths",
                "baselines", "schema", "description", "labels", "quantize", "impl", "close",
                "warnings", "texts", "queries", "eval_inputs", "eval_outputs"}
RESOLVED_AT = {"tunehub.core.extending.heads", "tunehub.core.models.inference", "tunehub.core.operations.sinks"}


def test_no_probing_for_head_members_after_registration():
    """Optional members of heads, predictors and sinks are resolved once, where they are
    registered or loaded (heads.py, inference.py's adapter, sinks.make_sinks)."""
    offenders = []
    for module, path in {**core_modules(),
                         **{module_name(p): p for p in (ROOT / "testing").rglob("*.py")}}.items():
        if module in RESOLVED_AT:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in HEAD_MEMBERS):
                offenders.append(f"{module}:{node.lineno} {node.func.id}(..., {node.args[1].value!r})")
    allowed = {"tunehub.testing.contract"}  # check_head inspects the plugin's own object
    assert [o for o in offenders if o.split(":")[0] not in allowed] == []
