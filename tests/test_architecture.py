"""The architecture holds: layers only import downwards, no cycles, no private cross-imports.

Every module of every distribution is parsed (imports inside functions and under
`TYPE_CHECKING` included) and checked against `LAYERS`, the cut documented in
docs/development.md ("Architecture"). A new module fails here until it is given a
layer: deciding where it goes is part of adding it.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Per distribution, its layers from the bottom up; a layer lists module names or
# fnmatch patterns. A module may import modules of its own layer and below (never a
# cycle), and other distributions only through their public package.
LAYERS: dict[str, Sequence[Sequence[str]]] = {
    "core": (
        ("_errors", "_version", "_system", "_switches", "_git_runner", "_yaml"),  # foundation
        (
            "_model",
            "_upstreams",
            "_lockfile",
            "_sheet_data",
            "_redact",
            "_registry",
            "_plugins",
        ),  # model, file format
        ("_identity", "_inputs", "_layout", "_savedir", "_env", "_project"),  # identity, inputs
        (  # capture and hashing
            "_hashcache",
            "_digest",
            "_walk",
            "_manifest",
            "_hash_progress",
            "_hashing",
            "_git",
            "_git_snapshot",
            "_recapture",
        ),
        # the run life cycle, the debug tools
        ("_gather", "_outputs", "_finalize", "_runlock", "_debug*"),
        ("_freshness", "_runs", "_verify*", "_diff*", "_show", "_housekeeping"),  # readers
        ("_status",),  # the state of a project's runs (reads many sheets)
        ("__init__",),
    ),
    "cli": (
        ("_contract", "_output", "_progress"),  # executor contract, terminal output
        ("_fields", "_tree", "_convert", "_yaml_text", "_config", "_interpolation", "_resolvers"),
        (
            "_render",
            "_cmdline",
            "_complete",
        ),  # config rendering (--print_config, --help, sheets); argv, TAB
        ("_runlog",),  # a run's stdout/stderr files
        ("_runner", "_tasks", "_executors"),  # one run, task lists, built-in executors
        ("_clicfg",),  # the decorator
        ("_rclone", "_remote", "_transfer", "_push*", "_pull*"),  # push/pull
        ("_reproduce",),  # re-run a run and compare (pulls a tag first)
        # the `flexlock` command: its table, commands, entry; the lineage picture
        ("_commands", "_cmd_*", "_main", "_graph*"),
        ("__init__",),
    ),
    "mlflow": (
        ("_sheet",),
        ("_query",),
        ("_lock",),
        ("_cli",),
        ("__init__",),
    ),
    "slurm": (
        ("_cluster", "_config", "_sheets"),
        ("_node",),
        ("_code_changes", "_submit", "_wait"),
        ("_executor",),
        ("__init__",),
    ),
}


def _imports(tree: ast.AST, package: str) -> Iterator[tuple[int, str]]:
    """Yield (line, absolute module name) for every import in `tree`, nested ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: -node.level]  # `package` is the module's own name
                base = ".".join([*parts, base] if base else parts)
            yield node.lineno, base
            for alias in node.names:  # `from flexlock.core import _lockfile`
                yield node.lineno, f"{base}.{alias.name}"


def _layer_of(module: str, layers: Sequence[Sequence[str]]) -> int | None:
    for index, names in enumerate(layers):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in names):
            return index
    return None


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Return one cycle per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; graphs here have < 100 nodes
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(
    sources: Mapping[str, Path], layers: Mapping[str, Sequence[Sequence[str]]]
) -> list[str]:
    """Check the packages `sources` (part -> `src/flexlock/<part>` folder) against `layers`."""
    problems: list[str] = []
    for part, folder in sorted(sources.items()):
        package = f"flexlock.{part}"
        graph: dict[str, set[str]] = {}
        for path in sorted(folder.glob("*.py")):
            module = path.stem
            where = path.relative_to(folder.parents[3]).as_posix()
            own_layer = _layer_of(module, layers[part])
            if own_layer is None:
                problems.append(f"{where}: module {module} has no layer in LAYERS[{part!r}]")
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            graph[module] = set()
            seen: set[tuple[int, str]] = set()
            for line, name in _imports(tree, f"{package}.{module}"):
                pieces = name.split(".")
                if pieces[0] != "flexlock" or len(pieces) < 3 or (line, pieces[2]) in seen:
                    continue
                seen.add((line, pieces[2]))
                other, target = pieces[1], pieces[2]
                if other != part:
                    # `__version__` is a public dunder, not a private module.
                    if target.startswith("_") and not target.endswith("__"):
                        problems.append(
                            f"{where}:{line}: imports {'.'.join(pieces[:3])}, a private module "
                            f"of another distribution; use `from flexlock.{other} import ...`"
                        )
                    continue
                if not target.startswith("_") or target == module:
                    continue
                graph[module].add(target)
                target_layer = _layer_of(target, layers[part])
                if target_layer is not None and target_layer > own_layer:
                    problems.append(
                        f"{where}:{line}: {module} (layer {own_layer}) imports {target} "
                        f"(layer {target_layer}), a higher layer"
                    )
        problems += [
            f"flexlock.{part}: import cycle {' -> '.join(cycle)}" for cycle in _cycles(graph)
        ]
    return problems


def _distributions() -> dict[str, Path]:
    found = {}
    for part in LAYERS:
        folder = ROOT / f"flexlock-{part}" / "src" / "flexlock" / part
        if folder.is_dir():
            found[part] = folder
    return found


def test_every_distribution_is_checked() -> None:
    assert sorted(LAYERS) == sorted(_distributions())


def test_modules_import_only_from_their_layer_or_below_and_never_privately_across() -> None:
    assert [] == violations(_distributions(), LAYERS)


# -- the checker itself can fail ------------------------------------------------------------


def _package(tmp_path: Path, part: str, modules: Mapping[str, str]) -> Path:
    folder = tmp_path / f"flexlock-{part}" / "src" / "flexlock" / part
    folder.mkdir(parents=True)
    for name, text in modules.items():
        (folder / f"{name}.py").write_text(text)
    return folder


_TOY_LAYERS = {"core": (("_low",), ("_high",), ("__init__",)), "cli": (("_a",), ("__init__",))}


def test_a_back_edge_inside_a_function_is_reported(tmp_path: Path) -> None:
    core = _package(
        tmp_path,
        "core",
        {"_low": "def f():\n    from flexlock.core._high import g\n", "_high": "", "__init__": ""},
    )
    assert [
        "flexlock-core/src/flexlock/core/_low.py:2: _low (layer 0) imports _high (layer 1), "
        "a higher layer"
    ] == violations({"core": core}, _TOY_LAYERS)


def test_a_cycle_inside_one_layer_is_reported(tmp_path: Path) -> None:
    layers = {"core": (("_a", "_b"), ("__init__",))}
    core = _package(
        tmp_path,
        "core",
        {"_a": "from flexlock.core import _b\n", "_b": "from . import _a\n", "__init__": ""},
    )
    assert ["flexlock.core: import cycle _a -> _b"] == violations({"core": core}, layers)


@pytest.mark.parametrize(
    "statement",
    [
        "from flexlock.core._low import x",
        "import flexlock.core._low",
        "from flexlock.core import _low",
    ],
)
def test_a_private_import_of_another_distribution_is_reported(
    tmp_path: Path, statement: str
) -> None:
    core = _package(tmp_path, "core", {"_low": "", "_high": "", "__init__": ""})
    cli = _package(tmp_path, "cli", {"_a": f"def f():\n    {statement}\n", "__init__": ""})
    assert [
        "flexlock-cli/src/flexlock/cli/_a.py:2: imports flexlock.core._low, a private module "
        "of another distribution; use `from flexlock.core import ...`"
    ] == violations({"core": core, "cli": cli}, _TOY_LAYERS)


def test_a_public_import_of_another_distribution_is_fine(tmp_path: Path) -> None:
    core = _package(tmp_path, "core", {"_low": "", "_high": "", "__init__": ""})
    cli = _package(tmp_path, "cli", {"_a": "from flexlock.core import runlock\n", "__init__": ""})
    assert [] == violations({"core": core, "cli": cli}, _TOY_LAYERS)


def test_a_module_without_a_layer_is_reported(tmp_path: Path) -> None:
    core = _package(tmp_path, "core", {"_low": "", "_new": "", "__init__": ""})
    assert [
        "flexlock-core/src/flexlock/core/_new.py: module _new has no layer in LAYERS['core']"
    ] == violations({"core": core}, _TOY_LAYERS)
