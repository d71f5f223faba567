"""The client is a package of its own (clients/python): it builds into a wheel that ships ``py.typed`` and the
``sms`` console script, depends on httpx alone, and the project's venv installs it (requirements.txt).

The wheel is built offline (``--no-index --no-build-isolation``, with the venv's own setuptools) from a copy of
the folder, so the checkout gets no build files.
"""
from __future__ import annotations

import email
import importlib
import shutil
import subprocess
import sys
import zipfile

from .clientlib import CLIENT_SRC, ROOT

PROJECT = ROOT / "clients" / "python"


def test_the_wheel_ships_py_typed_the_sms_command_and_depends_on_httpx_alone(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(PROJECT, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-index",
                    "--no-build-isolation", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("sms_sender_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(info))
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "sms_sender/py.typed" in names
    sources = {p.relative_to(CLIENT_SRC).as_posix() for p in CLIENT_SRC.rglob("*.py")}
    assert sources <= set(names)
    assert metadata.get_all("Requires-Dist") == ["httpx<1,>=0.27"]
    assert "[console_scripts]\nsms = sms_sender.cli:main" in entry_points
    module, _, function = "sms_sender.cli:main".partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_the_project_venv_installs_the_client_and_pins_httpx():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert "-e ./clients/python" in lines
    pins = dict(line.split("==") for line in lines if "==" in line)
    assert {"httpx", "httpcore", "h11", "anyio", "certifi", "idna"} <= set(pins)
    import httpx

    assert httpx.__version__ == pins["httpx"]
    makefile = (ROOT / "Makefile").read_text()
    assert "clients/python/pyproject.toml" in makefile  # a change to the package's metadata installs it again
