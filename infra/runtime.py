"""The Lambda runtime every Python function of the stack runs on, and the Chalice package built for it.

Chalice takes a function's runtime from the Python that packages it (``Config.lambda_python_version``:
this venv's 3.11 would deploy ``python3.11``, deprecated 2027-06-30). ``ChaliceApp`` packages for
``PYTHON`` instead, whatever Python runs the synth: the functions' ``Runtime`` is ``PYTHON``, and
pip picks every wheel for it (its ``--python-version``, ABI and Amazon Linux 2023's manylinux
platforms, binary wheels only). Before the synth goes on, ``package_problems`` reads the package
Chalice built: a wheel that would not run on ``PYTHON``, or a dependency missing from it (Chalice
only prints a warning for one), fails the synth.

The first synth downloads the wheels, and so does the first after any change under ``app/`` (Chalice's package
cache is keyed on the requirements and the app's code). Offline that fails with ``PackagingError``: one line
naming the package index pip could not reach (read from pip's own log of the attempt) and what to do, where
Chalice would raise with a long traceback.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from email.parser import Parser
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from chalice.cdk import Chalice
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.deploy.packager import NoSuchPackageError, PackageDownloadError
from packaging import tags
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# The newest Python runtime aws-cdk-lib knows (cdk-nag's AwsSolutions-L1 asks for that one), deprecated
# 2029-06-30 by cfn-lint's lifecycle data (tests/test_runtime.py checks it is a year away or more).
PYTHON = lambda_.Runtime.PYTHON_3_14

# Lambda's architecture names, as wheel tags name the machine.
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
# Amazon Linux 2023's glibc, on which Lambda's python3.12 and later runtimes run
# (tests/aws_docs/amazon-linux-2023-glibc.json): the newest manylinux a wheel may need.
GLIBC = (2, 34)


def version(runtime: str) -> tuple[int, int]:
    """``python3.14`` -> ``(3, 14)``."""
    major, minor = runtime.removeprefix("python").split(".")
    return int(major), int(minor)


def platforms(machine: str) -> list[str]:
    """The manylinux platform tags a wheel may carry to run on Amazon Linux 2023, newest first
    (PEP 600's perennial tags, and the legacy aliases of 2.17, 2.12 and 2.5)."""
    oldest = 5 if machine == "x86_64" else 17  # manylinux1 was x86 only; aarch64 starts at 2014
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    found = []
    for minor in range(GLIBC[1], oldest - 1, -1):
        found.append(f"manylinux_{GLIBC[0]}_{minor}_{machine}")
        if minor in legacy:
            found.append(f"{legacy[minor]}_{machine}")
    return found


def supported_tags(runtime: str, machine: str) -> set[str]:
    """Every wheel tag that runs on this runtime and machine, as pip (through the ``packaging``
    library) lists them for that interpreter: CPython's own ABI, the stable ABI, pure Python."""
    python = version(runtime)
    interpreter = "cp%d%d" % python
    found = tags.cpython_tags(python, abis=[interpreter], platforms=platforms(machine))
    compatible = tags.compatible_tags(python, interpreter, platforms(machine))
    return {str(tag) for tag in [*found, *compatible]}


def environment(runtime: str, machine: str) -> dict[str, str]:
    """The environment markers (PEP 508) of the Lambda runtime: a dependency's marker is
    evaluated for it, not for the Python that packages."""
    major, minor = version(runtime)
    return {"implementation_name": "cpython", "implementation_version": f"{major}.{minor}.0", "os_name": "posix",
            "platform_machine": machine, "platform_python_implementation": "CPython", "platform_release": "",
            "platform_system": "Linux", "platform_version": "", "python_full_version": f"{major}.{minor}.0",
            "python_version": f"{major}.{minor}", "sys_platform": "linux", "extra": ""}


def package_problems(package: Path, requirements: Path, runtime: str, machine: str) -> list[str]:
    """What would not work in a Lambda deployment package on this runtime: a wheel none of whose
    tags runs there, a requirement (``requirements.txt``, or a packaged distribution's own, with
    its markers evaluated for the runtime and the extras asked for) with no distribution in the
    package, or one at a version the requirement refuses. Empty when the package is sound."""
    problems, packaged, needs = [], {}, []
    supported = supported_tags(runtime, machine)
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        for info in sorted({n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}):
            if f"{info}/WHEEL" not in names or f"{info}/METADATA" not in names:
                problems.append(f"{info}: not installed from a wheel")
                continue
            wheel = Parser().parsestr(archive.read(f"{info}/WHEEL").decode())
            metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
            name = canonicalize_name(metadata["Name"])
            packaged[name] = metadata["Version"]
            wheel_tags = wheel.get_all("Tag") or []
            if not set(wheel_tags) & supported:
                problems.append(f"{metadata['Name']} {metadata['Version']}: its wheel ({', '.join(wheel_tags)}) "
                                f"does not run on {runtime} {machine}")
            needs += [(name, Requirement(r)) for r in metadata.get_all("Requires-Dist") or []]
    for line in requirements.read_text().splitlines():
        if line.split("#")[0].strip():
            needs.append((None, Requirement(line.split("#")[0].strip())))
    # The extras asked of each distribution, by requirements.txt or by another distribution.
    extras: dict[str | None, set[str]] = {None: {""}}
    for _, requirement in needs:
        extras.setdefault(canonicalize_name(requirement.name), {""}).update(requirement.extras)
    markers = environment(runtime, machine)
    for who, requirement in needs:
        if requirement.marker is not None and not any(
                requirement.marker.evaluate({**markers, "extra": extra}) for extra in extras.get(who, {""})):
            continue
        asker = requirements.name if who is None else f"{who} {packaged[who]}"
        have = packaged.get(canonicalize_name(requirement.name))
        if have is None:
            problems.append(f"{asker} needs {requirement}, which the package lacks")
        elif not requirement.specifier.contains(have, prereleases=True):
            problems.append(f"{asker} needs {requirement}, and the package has {requirement.name} {have}")
    return problems


class _PackagedRuntime(Config):
    """Chalice's configuration, but for the runtime: ``PYTHON``, not the packaging Python's."""

    @property
    def lambda_python_version(self) -> str:
        return PYTHON.name


class PackagingError(Exception):
    """The Lambda package could not be built. The message is one line saying why and what to do."""


# pip's verbose log (``--log``), for an index page it could not fetch: the page's URL (``<index>/<project>/``,
# any password redacted) and the reason. A connection error covers a refused connection, a failed DNS
# look-up, a timeout and a proxy that refused; a certificate pip could not verify is also a registry not reached.
_NOT_FETCHED = re.compile(r"Could not fetch URL (\S+): (connection error: |There was a problem confirming the "
                          r"ssl certificate: )(.*)")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_CAUSE = re.compile(r"Caused by (\w+)")


def download_failure(pip_log: str, error: Exception, cache: str) -> str:
    """The one line a synth prints when Chalice's pip download failed: the package indexes pip could not
    reach and why, from ``pip_log`` (pip's own log of the attempt), with what to do; otherwise pip's last
    error. ``cache``: where Chalice keeps the built package, which later synths reuse without the network."""
    unreachable: dict[str, str] = {}
    for url, kind, detail in _NOT_FETCHED.findall(pip_log):
        index = url.rstrip("/").rsplit("/", 1)[0]
        found = _ERRNO.search(detail) or _CAUSE.search(detail)
        why = found.group(1).strip() if found else ("certificate not verified" if "ssl" in kind else "")
        unreachable.setdefault(index, why)
    if unreachable:
        where = ", ".join(f"{index} ({why})" if why else index for index, why in unreachable.items())
        indexes = "package index" if len(unreachable) == 1 else "package indexes"
        return (f"Cannot build the Lambda package: the {indexes} {where} could not be reached. A synth downloads "
                f"the Lambda's wheels the first time and again after any change under app/: connect to the network "
                f"and synth again; until app/ changes, later synths reuse {cache} and need no network.")
    errors = [line.split(" ", 1)[-1] for line in pip_log.splitlines() if " ERROR: " in line]
    reason = errors[-1] if errors else (str(error).strip().splitlines() or [type(error).__name__])[-1]
    return f"Cannot build the Lambda package: pip could not download its dependencies: {reason}"


@contextmanager
def _pip_for(runtime: str, machine: str, log: Path):
    """pip, while Chalice packages, downloads for the runtime: every option set the way pip reads
    any option from the environment (``PIP_<OPTION>``), binary wheels only. Chalice's own pip calls
    add its per-package ``--platform``/``--abi`` to these. Each call appends its verbose log to ``log``
    (``--log``): Chalice keeps only pip's exit status and, at times, its stderr."""
    major, minor = version(runtime)
    settings = {"PIP_PYTHON_VERSION": f"{major}.{minor}", "PIP_IMPLEMENTATION": "cp", "PIP_ABI": f"cp{major}{minor}",
                "PIP_PLATFORM": " ".join(platforms(machine)), "PIP_ONLY_BINARY": ":all:", "PIP_LOG": str(log)}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield log
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _without_bytecode(source_dir: Path):
    """Chalice packages with no bytecode under the Chalice project: its ``__pycache__`` folders removed first, and
    none written while it loads the app. Chalice keys its package cache on every file under ``chalicelib/``
    (bytecode too) and zips them all: bytecode that ``make dev`` or the tests left behind would make a synth miss
    the package it built before and download the wheels again (offline: fail), and it would ship this Python's
    bytecode, which ``PYTHON`` does not load. Python writes it again the next time it imports the app."""
    for cache in sorted(source_dir.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        yield
    finally:
        sys.dont_write_bytecode = saved


class ChaliceApp(Chalice):
    """``chalice.cdk.Chalice``, packaging the app for ``PYTHON`` (see the module's docstring). The
    package cache stays Chalice's (``app/.chalice/deployments/``, one zip per requirements, app
    code and runtime): a synth that finds its package there needs no network."""

    def _package_app(self) -> None:
        # chalice.api.package_app, with the runtime fixed.
        factory = CLIFactory(self.source_dir, environ=os.environ)
        config = factory.create_config_obj(self.stage_name, user_provided_params=self.stage_config or {})
        config.__class__ = _PackagedRuntime  # the same configuration; only the runtime is ours
        packager = factory.create_app_packager(config, factory.create_package_options(),
                                               package_format="cloudformation", template_format="json")
        machine = MACHINES[config.lambda_architecture]
        with tempfile.TemporaryDirectory(prefix="pip-log-") as scratch, _without_bytecode(Path(self.source_dir)), \
                _pip_for(PYTHON.name, machine, Path(scratch) / "pip.log") as log:
            try:
                packager.package_app(config, self._sam_package_dir, self.stage_name)
            except (NoSuchPackageError, PackageDownloadError) as failed:
                pip_log = log.read_text(errors="replace") if log.exists() else ""
                cache = f"{Path(self.source_dir).name}/.chalice/deployments/"
                raise PackagingError(download_failure(pip_log, failed, cache)) from None
        problems = package_problems(Path(self._sam_package_dir) / "deployment.zip",
                                    Path(self.source_dir) / "requirements.txt", PYTHON.name, machine)
        if problems:
            raise ValueError(f"the Lambda package would not run on {PYTHON.name} {machine}:\n  "
                             + "\n  ".join(problems))
