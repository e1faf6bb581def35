"""The import contract (docs/architecture.md): each part of the project imports only the parts
below it, no module imports itself back through others, and the core reaches no framework,
no socket, no process, no file and no Mininet. A hand-written walk over the syntax trees: the
contract is one table, and the walk needs nothing the suite does not already have (networkx
finds the cycles)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = ("controller", "models", "topologies", "placement", "fakes", "benchmarks", "scripts", "tests")

# part -> the parts it may import; a part is the longest listed prefix of a module's name
MAY_IMPORT = {
    "controller.openflow": set(),
    "controller.core": {"controller.openflow"},
    "controller.files": {"controller.core"},
    "models": {"controller.files"},
    "controller.policies": {"controller.core", "controller.files", "models"},
    "controller.service": {"controller.openflow", "controller.core", "controller.files", "controller.policies",
                           "models"},
    "controller": {"controller.openflow", "controller.core", "controller.files", "controller.policies",
                   "controller.service", "models"},
    "topologies": {"controller.openflow", "controller.core", "controller.files"},
    "placement": {"controller.core", "controller.files"},
    "fakes": {"controller.openflow", "controller.core", "controller.files", "controller.policies"},
    "benchmarks": {"controller.openflow", "controller.core", "controller.files", "controller.policies",
                   "controller.service", "controller", "models", "topologies", "placement", "fakes"},
    "scripts": {"controller.openflow", "controller.core", "controller.files", "controller.policies",
                "controller.service", "controller", "models", "topologies", "placement"},
    "tests": set(MAY_IMPORT_ALL := {"controller.openflow", "controller.core", "controller.files", "controller.policies",
                                    "controller.service", "controller", "models", "topologies", "placement",
                                    "fakes", "benchmarks", "scripts"}),
}
# what the pure layers must not reach: frameworks, the network, processes, Mininet, the files module
IMPURE = ("os_ken", "ryu", "eventlet", "mininet", "subprocess", "http", "urllib", "asyncio",
          "threading", "select", "prometheus_client", "controller.files", "controller.service")
PURE = ("controller.openflow", "controller.core")
# socket's address conversions are pure, and 14x faster than ipaddress's (packets.ip_bytes)
PURE_SOCKET = {"inet_ntoa", "inet_pton", "AF_INET"}


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (a function's late import counts too)."""
    found = set()
    package = module_of(path) if path.name == "__init__.py" else module_of(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


ENTRY = {"controller", "controller.app", "controller.__main__"}    # the part "controller", exactly


def part_of(module: str) -> str | None:
    """The part a module belongs to: the longest listed prefix; a new package under controller/
    belongs to none until the contract names it."""
    if module in ENTRY:
        return "controller"
    for part in sorted(MAY_IMPORT, key=len, reverse=True):
        if part != "controller" and (module == part or module.startswith(part + ".")):
            return part
    return None


def ours() -> dict[str, set[str]]:
    """Each of our modules -> the modules of ours it imports (names resolved to modules)."""
    files = {module_of(p): p for top in TOP for p in (ROOT / top).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        targets = set()
        for imported in imports(path):
            while imported and imported not in files:      # `from pkg import name` -> pkg
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


GRAPH = ours()


def test_every_module_belongs_to_a_part_of_the_contract():
    assert [m for m in GRAPH if part_of(m) is None] == []


def test_each_part_imports_only_the_parts_below_it():
    broken = sorted(f"{m} imports {t}" for m, ts in GRAPH.items() for t in ts
                    if part_of(t) != part_of(m) and part_of(t) not in MAY_IMPORT[part_of(m)])
    assert broken == []


def test_no_module_imports_itself_back():
    graph = nx.DiGraph([(m, t) for m, ts in GRAPH.items() for t in ts
                        if not m.startswith("tests")])
    assert list(nx.simple_cycles(graph)) == []


def test_the_allowed_imports_form_layers_without_cycles():
    assert nx.is_directed_acyclic_graph(nx.DiGraph([(p, q) for p, qs in MAY_IMPORT.items() for q in qs]))


# calls that reach files, processes or modules by name, whatever they were imported as
IMPURE_CALLS = {"open", "__import__", "import_module", "system", "popen", "read_text", "write_text",
                "read_bytes", "write_bytes", "exec", "eval"}


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if part_of(m) in PURE))
def test_the_pure_layers_reach_no_framework_network_process_or_file(module):
    path = next(p for top in TOP for p in (ROOT / top).rglob("*.py") if module_of(p) == module)
    reached = sorted(i for i in imports(path) for bad in IMPURE if i == bad or i.startswith(bad + "."))
    reached += sorted(i for i in imports(path) if i.startswith("socket.") and i[7:] not in PURE_SOCKET)
    tree = ast.parse(path.read_text())
    calls = [f"{n.lineno}: {getattr(n.func, 'id', getattr(n.func, 'attr', ''))}" for n in ast.walk(tree)
             if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) in IMPURE_CALLS]
    aliased = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
               if a.name == "socket" and a.asname]
    sockets = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
               and n.value.id == "socket" and n.attr not in PURE_SOCKET]
    assert (reached, calls, aliased, sockets) == ([], [], [], [])


def test_every_folder_of_python_code_is_walked():
    folders = {d.name for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name != "results"
               and next(d.rglob("*.py"), None)}
    assert folders - set(TOP) == set()
