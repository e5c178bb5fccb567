"""Layers point one way: a module imports only from its own layer or lower ones, and never a command line.

Lowest first: game -> models -> losses -> datamodules -> lightning_modules -> eval -> callbacks -> command lines
-> bench -> studies. A command-line module is a `__main__.py`, a `cli.py`, or any module with an
`if __name__ == "__main__":` guard; it sits on the command-line layer (or its package's, if higher). Every
import counts: module level, inside functions, relative. Only imports of our own packages are checked.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIBRARY_LAYERS = ("game", "models", "losses", "datamodules", "lightning_modules", "eval", "callbacks")
CLI_RANK = len(LIBRARY_LAYERS)  # command lines: above every library layer
PACKAGE_RANK = {name: rank for rank, name in enumerate(LIBRARY_LAYERS)} | {
    "bench": CLI_RANK + 1,
    "studies": CLI_RANK + 2,
}
PACKAGES = tuple(PACKAGE_RANK)
CLI_FILE_NAMES = ("__main__.py", "cli.py")


@dataclass(frozen=True)
class Violation:
    file: str  # repository-relative path of the importing module
    line: int
    imported: str  # dotted module name
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: imports {self.imported} ({self.why})"


def is_command_line(path: Path, tree: ast.Module) -> bool:
    """A `__main__.py`, a `cli.py`, or a module with a top-level `if __name__ == "__main__":` guard."""
    if path.name in CLI_FILE_NAMES:
        return True
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            sides = [node.test.left, *node.test.comparators]
            names = {s.id for s in sides if isinstance(s, ast.Name)}
            constants = {s.value for s in sides if isinstance(s, ast.Constant)}
            if "__name__" in names and "__main__" in constants:
                return True
    return False


def module_name(path: Path, root: Path) -> str:
    """Dotted name of a file under root: game/head.py -> game.head, game/__init__.py -> game."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.Module, name: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in the tree, relative ones resolved; `from a import b` gives a.b too,
    since b may be a module (resolve_module keeps whichever exists)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = package[: len(package) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            found += [(node.lineno, f"{source}.{alias.name}") for alias in node.names if alias.name != "*"]
            found.append((node.lineno, source))
    return found


def resolve_module(dotted: str, root: Path) -> Path | None:
    """The file a dotted name of ours is (module or package), or None when it is not ours or not a module."""
    path = root.joinpath(*dotted.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def rank_of(path: Path, root: Path, tree: ast.Module | None = None) -> int:
    """A module's layer: its package's, raised to the command-line layer for a command line."""
    rank = PACKAGE_RANK[path.relative_to(root).parts[0]]
    tree = tree if tree is not None else ast.parse(path.read_text(), str(path))
    return max(rank, CLI_RANK) if is_command_line(path, tree) else rank


def check_module(path: Path, root: Path) -> list[Violation]:
    """Every import of `path` that points up the layers or at a command-line module."""
    tree = ast.parse(path.read_text(), str(path))
    name = module_name(path, root)
    own_rank = rank_of(path, root, tree)
    violations, seen = [], set()
    for line, dotted in imported_modules(tree, name, path.name == "__init__.py"):
        if dotted.split(".")[0] not in PACKAGE_RANK:
            continue
        target = resolve_module(dotted, root)
        if target is None or target == path or (line, target) in seen:
            continue
        seen.add((line, target))
        target_tree = ast.parse(target.read_text(), str(target))
        target_name = module_name(target, root)
        relative = str(path.relative_to(root))
        if is_command_line(target, target_tree):
            violations.append(Violation(relative, line, target_name, "a command-line module"))
        elif rank_of(target, root, target_tree) > own_rank:
            layer = target.relative_to(root).parts[0]
            violations.append(Violation(relative, line, target_name, f"layer {layer} is above this module's"))
    return violations


def check_package(package: str, root: Path = REPO) -> list[Violation]:
    """Violations of every module in one top-level package (none when the folder does not exist)."""
    folder = root / package
    return [v for path in sorted(folder.rglob("*.py")) for v in check_module(path, root)] if folder.is_dir() else []


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_down(package):
    if not (REPO / package).is_dir():
        pytest.skip(f"no {package}/ folder")
    found = check_package(package)
    assert not found, "imports against the layer order:\n" + "\n".join(map(str, found))


def test_checker_flags_up_layer_and_command_line_imports(tmp_path):
    """Known answer: a fake game module importing models (up, function level), a relative import inside its own
    package (fine), and an eval library importing a command line are flagged with file and line; nothing else."""
    for package in ("game", "models", "eval"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "models" / "weights.py").write_text("X = 1\n")
    (tmp_path / "game" / "topology.py").write_text("Y = 2\n")
    (tmp_path / "game" / "head.py").write_text(
        "from . import topology\nimport numpy\n\n\ndef f():\n    from models.weights import X\n    return X\n"
    )
    (tmp_path / "eval" / "tool.py").write_text('def main():\n    pass\n\n\nif __name__ == "__main__":\n    main()\n')
    (tmp_path / "eval" / "report.py").write_text("from game.head import f\nfrom eval import tool\n")
    game = [str(v) for v in check_package("game", tmp_path)]
    assert game == ["game/head.py:6: imports models.weights (layer models is above this module's)"]
    evaluation = [str(v) for v in check_package("eval", tmp_path)]
    assert evaluation == ["eval/report.py:2: imports eval.tool (a command-line module)"]


def test_game_imports_only_game():
    """The game is self-contained, its command line included: data it needs ships in game/data/, not as an import."""
    outside = {
        f"{path.relative_to(REPO)}:{line}: imports {module_name(target, REPO)}"
        for path in sorted((REPO / "game").rglob("*.py"))
        for line, dotted in imported_modules(ast.parse(path.read_text()), module_name(path, REPO), False)
        if dotted.split(".")[0] in PACKAGE_RANK and dotted.split(".")[0] != "game"
        for target in [resolve_module(dotted, REPO)]
        if target is not None
    }
    assert not outside, "\n".join(sorted(outside))
