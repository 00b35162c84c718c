"""
The shape of the code: every module imports on its own, no module imports
one that imports it back, and heavy drivers load only when they are used.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from twisted.trial import unittest

import chatroom

PACKAGE_ROOT = Path(chatroom.__file__).parent


def chatroom_modules() -> list[str]:
    """Every module and package of chatroom, by its dotted name."""
    return ["chatroom"] + sorted(
        module.name for module in pkgutil.walk_packages(chatroom.__path__, "chatroom.")
    )


def source_path(module: str) -> Path:
    path = PACKAGE_ROOT.joinpath(*module.split(".")[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported_modules(module: str, known: set[str]) -> set[str]:
    """
    The chatroom modules that C{module} imports anywhere in its source,
    in a function too: an import deferred to a call is still one that must
    not come back.
    """
    tree = ast.parse(source_path(module).read_text(), str(source_path(module)))
    is_package = source_path(module).name == "__init__.py"
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            for alias in node.names:
                # "from package import module" imports the module.
                submodule = f"{base}.{alias.name}"
                imported.add(submodule if submodule in known else base)
    return {name for name in imported if name in known and name != module}


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, name] if name else parts)


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                lowest[module] = min(lowest[module], lowest[other])
            elif other in on_stack:
                lowest[module] = min(lowest[module], index[other])
        if lowest[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def run_python(code: str) -> subprocess.CompletedProcess:
    """C{code} in a fresh interpreter, from the project's directory."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=PACKAGE_ROOT.parent,
        timeout=60,
    )


class ImportTests(unittest.TestCase):
    def test_every_module_imports_on_its_own(self):
        modules = chatroom_modules()
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = pool.map(lambda name: run_python(f"import {name}"), modules)
        failed = {
            name: result.stderr.strip().splitlines()[-1]
            for name, result in zip(modules, results, strict=True)
            if result.returncode != 0
        }
        self.assertEqual(failed, {})

    def test_no_module_imports_one_that_imports_it_back(self):
        modules = chatroom_modules()
        known = set(modules)
        graph = {module: imported_modules(module, known) for module in modules}
        self.assertEqual(import_cycles(graph), [])

    def test_the_cycle_finder_finds_a_cycle_through_a_deferred_import(self):
        modules = ["chatroom.storage.opening", "chatroom.storage.postgres"]
        graph = {module: imported_modules(module, set(modules)) for module in modules}
        self.assertEqual(graph["chatroom.storage.opening"], {modules[1]})
        graph[modules[1]].add(modules[0])
        self.assertEqual(import_cycles(graph), [modules])

    def test_psycopg_is_imported_only_to_open_postgresql(self):
        result = run_python(
            "import sys\n"
            "from twisted.internet import reactor\n"
            "import chatroom.tap\n"
            "from chatroom.storage.opening import open_database\n"
            "open_database(':memory:', reactor)\n"
            "print('psycopg' in sys.modules)\n"
        )
        self.assertEqual((result.returncode, result.stdout), (0, "False\n"))
