"""chalicelib's layout, read from its source with ``ast``: no import cycle between modules, no module using
another module's private (``_``) names, capabilities importing ``core`` and never ``core`` importing them,
and every package opening with a docstring that says what it owns.

Every import counts, at the top of a module or inside a function: a lazy import hides a cycle from the cold
start, not from the reader. A package's ``__init__`` is a module of its own, and importing ``a.b`` imports
``a`` (its ``__init__``) first.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "app" / "chalicelib"
ROOT_PACKAGE = "chalicelib"
CORE = f"{ROOT_PACKAGE}.core"
# The modules that may stay loose in chalicelib itself, beside the packages.
MAX_LOOSE = 3


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(LIB.rglob("*.py"))}


def _resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name a relative ``from`` import names."""
    if level == 0:
        return target or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


class Use:
    """One module's use of another: the names it takes from it (``from m import a``) and the attributes it reads
    through it (``m.a`` after ``import m`` or ``from pkg import m``)."""

    def __init__(self):
        self.names: dict[str, set[str]] = {}

    def add(self, module: str, name: str) -> None:
        self.names.setdefault(module, set()).add(name)


def imports_of(name: str, path: Path, known: dict[str, Path]) -> tuple[set[str], Use]:
    """The chalicelib modules ``name`` imports (and their parent packages), and the names it uses from each."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    edges: set[str] = set()
    use = Use()
    aliases: dict[str, str] = {}  # local name -> module it stands for

    def depend(module: str) -> None:
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
            candidate = ".".join(parts[:i])
            if candidate in known and candidate != name:
                edges.add(candidate)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == ROOT_PACKAGE:
                    depend(alias.name)
                    if alias.asname:
                        aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(name, is_package, node.level, node.module)
            if source.split(".")[0] != ROOT_PACKAGE:
                continue
            depend(source)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in known:  # from pkg import module
                    depend(submodule)
                    aliases[alias.asname or alias.name] = submodule
                else:  # from module import name
                    use.add(source, alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            use.add(aliases[node.value.id], node.attr)
    return edges, use


def graph() -> tuple[dict[str, set[str]], dict[str, Use]]:
    known = modules()
    edges, uses = {}, {}
    for name, path in known.items():
        edges[name], uses[name] = imports_of(name, path, known)
    return edges, uses


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module, and every module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in edges.get(node, ()):
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    """The capability a module belongs to (``chalicelib.sending``), or the module itself when it is loose."""
    parts = module.split(".")
    return ".".join(parts[:2])


# -- the checks themselves, on small made-up trees, so that a check that cannot fail is seen to fail ----------
def test_the_cycle_finder_finds_rings_and_self_imports():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_inside_functions_and_of_packages_count(tmp_path):
    lib = tmp_path / ROOT_PACKAGE
    (lib / "core").mkdir(parents=True)
    (lib / "__init__.py").write_text('"""root"""\n')
    (lib / "core" / "__init__.py").write_text('"""core"""\nfrom . import aws\n')
    (lib / "core" / "aws.py").write_text("def reset():\n    from ..sending import idempotency\n"
                                         "    idempotency._runner()\n")
    (lib / "sending").mkdir()
    (lib / "sending" / "__init__.py").write_text('"""sending"""\n')
    (lib / "sending" / "idempotency.py").write_text("from ..core import aws\n\ndef _runner():\n    aws.reset()\n")
    known = {module_name_in(lib, p): p for p in lib.rglob("*.py")}
    edges = {n: imports_of(n, p, known)[0] for n, p in known.items()}
    assert ["chalicelib.core", "chalicelib.core.aws", "chalicelib.sending.idempotency"] in cycles(edges)
    _, use = imports_of("chalicelib.core.aws", known["chalicelib.core.aws"], known)
    assert "_runner" in use.names["chalicelib.sending.idempotency"]


def module_name_in(lib: Path, path: Path) -> str:
    parts = list(path.relative_to(lib.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# -- chalicelib as it is ----------------------------------------------------------------------------------------
def test_no_import_cycle_between_modules():
    edges, _ = graph()
    assert cycles(edges) == [], "import cycles in chalicelib (every import counts, lazy ones too)"


def test_no_module_uses_another_modules_private_names():
    _, uses = graph()
    private = sorted(f"{user} uses {module}.{name}" for user, use in uses.items()
                     for module, names in use.names.items() if module != user
                     for name in names if name.startswith("_") and not name.startswith("__"))
    assert private == []


def test_capabilities_import_core_and_core_imports_no_capability():
    edges, _ = graph()
    upward = sorted(f"{module} imports {target}" for module, targets in edges.items()
                    if module == CORE or module.startswith(CORE + ".")
                    for target in targets if not (target == CORE or target.startswith(CORE + ".")
                                                  or target == ROOT_PACKAGE))
    assert upward == []


def test_packages_between_capabilities_point_one_way():
    """Where two capabilities meet, one calls the other: never both ways (``sending`` renders ``templates``, so
    ``templates`` never imports ``sending``)."""
    edges, _ = graph()
    between: set[tuple[str, str]] = set()
    for module, targets in edges.items():
        for target in targets:
            a, b = package_of(module), package_of(target)
            if a != b and CORE not in (a, b) and ROOT_PACKAGE not in (a, b):
                between.add((a, b))
    both_ways = sorted(f"{a} <-> {b}" for a, b in between if (b, a) in between and a < b)
    assert both_ways == []


def test_every_package_says_what_it_owns_and_few_modules_stay_loose():
    packages = [path for path in LIB.rglob("__init__.py")]
    assert len(packages) >= 6, "chalicelib is grouped into packages by capability"
    for init in packages:
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 8, f"{init.relative_to(LIB.parent)} opens with a docstring saying what it owns"
        if init.parent != LIB:
            assert "import" in doc.lower(), f"{init.relative_to(LIB.parent)}: say what it may import"
    loose = sorted(p.name for p in LIB.glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= MAX_LOOSE, loose


@pytest.mark.parametrize("package", ["core", "sending", "templates", "status", "webhooks", "replies", "console",
                                     "reports"])
def test_the_capability_packages_exist(package):
    assert (LIB / package / "__init__.py").is_file()
