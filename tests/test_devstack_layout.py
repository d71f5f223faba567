"""devstack's layout, read from its source with ``ast``: every module opens with a docstring saying what it
plays, no import cycle between its modules (every import counts, lazy ones too; importing ``a.b`` imports
``a`` first), and the End User Messaging stand-in's package ``__init__`` imports nothing, so that none of
its modules imports back into it. The cycle finder is ``tests/test_layout.py``'s, which is seen to fail there.
"""
from __future__ import annotations

import ast
from pathlib import Path

from .test_layout import cycles

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "devstack"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / PACKAGE).rglob("*.py"))}


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The devstack modules ``name`` imports, their parent packages included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    edges: set[str] = set()

    def depend(module: str) -> None:
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in known and candidate != name:
                edges.add(candidate)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                depend(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - (node.level - 1)] if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            depend(source)
            for alias in node.names:
                depend(f"{source}.{alias.name}")  # from package import module
    return edges


def test_the_import_reader_sees_relative_and_lazy_imports(tmp_path):
    package = tmp_path / PACKAGE / "area"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""area"""\n')
    (package / "one.py").write_text("def later():\n    from . import two\n")
    (package / "two.py").write_text("from ..area.one import later\n")
    known = {"devstack": None, "devstack.area": None, "devstack.area.one": None, "devstack.area.two": None}
    assert imports_of("devstack.area.one", package / "one.py", known) == {"devstack", "devstack.area",
                                                                          "devstack.area.two"}
    assert "devstack.area.one" in imports_of("devstack.area.two", package / "two.py", known)


def test_no_import_cycle_between_devstack_modules():
    known = modules()
    edges = {name: imports_of(name, path, known) for name, path in known.items()}
    assert "devstack.sms_voice.model" in edges["devstack.sms_voice.standin"]  # the reader reads these imports
    assert cycles(edges) == []


def test_every_devstack_module_says_what_it_plays():
    for name, path in modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 8, f"{name} opens with a docstring saying what it plays"


def test_the_stand_ins_package_init_imports_nothing():
    init = ROOT / PACKAGE / "sms_voice" / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
