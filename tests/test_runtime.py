"""The Lambda runtime of every function the stack makes, and the package the Python ones run.

Two sources pin it: cfn-lint's runtime lifecycle data (``LmbdRuntimeLifecycle.json``, the dates AWS
publishes for each runtime's deprecation), read here, never retyped; and the tags of the wheels that
end up in the deployment package the synth produces, which must run on the runtime (``infra/runtime.py``).
"""
from __future__ import annotations

import io
import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import cfnlint
import pytest
from aws_cdk import aws_lambda as lambda_

from apppath import APP_DIR
from infra import runtime

LIFECYCLE = json.loads((Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "LmbdRuntimeLifecycle.json")
                       .read_text())
GLIBC = json.loads((Path(__file__).parent / "aws_docs" / "amazon-linux-2023-glibc.json").read_text())
STAGES = ("template", "prod_template", "mms_template", "sms_voice_template", "second_stage")
FUNCTIONS = ("AWS::Lambda::Function", "AWS::Serverless::Function")


def a_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def too_close_to_deprecation(runtime_name: str, today: date) -> str | None:
    """Why a function on this runtime should move now (its deprecation, by cfn-lint's data, falls
    within 12 months of ``today``, or cfn-lint does not know the runtime), or None."""
    if runtime_name not in LIFECYCLE:
        return f"{runtime_name}: cfn-lint has no lifecycle for it"
    deprecated = date.fromisoformat(LIFECYCLE[runtime_name]["deprecated"])
    if deprecated <= a_year_after(today):
        return f"{runtime_name} is deprecated on {deprecated}, within a year of {today}"
    return None


def functions(template) -> dict[str, str]:
    """Every function of a template and its runtime (a SAM function may take it from Globals)."""
    found = template.to_json()
    default = found.get("Globals", {}).get("Function", {}).get("Runtime")
    return {name: r["Properties"].get("Runtime", default) for name, r in found["Resources"].items()
            if r["Type"] in FUNCTIONS}


# -- the rule, on an injected today --------------------------------------------------------------

def test_a_runtime_fails_from_a_year_before_its_deprecation():
    deprecated = date.fromisoformat(LIFECYCLE["python3.11"]["deprecated"])
    year_before = deprecated.replace(year=deprecated.year - 1)
    assert too_close_to_deprecation("python3.11", year_before - timedelta(days=1)) is None
    assert too_close_to_deprecation("python3.11", year_before)
    assert too_close_to_deprecation("python3.11", deprecated + timedelta(days=1))
    # The runtime Chalice would pick from this venv's Python is already within the year today, which
    # is why the stack packages for another.
    assert too_close_to_deprecation("python3.11", date.today())


def test_an_unknown_runtime_fails_and_a_leap_day_counts_a_year_to_28_february():
    assert "no lifecycle" in too_close_to_deprecation("python9.9", date(2026, 1, 1))
    assert a_year_after(date(2028, 2, 29)) == date(2029, 2, 28)


# -- the real check, today ---------------------------------------------------------------------------

@pytest.mark.parametrize("stage", STAGES)
def test_every_function_of_every_stage_has_a_year_of_support_left(request, stage):
    found = functions(request.getfixturevalue(stage))
    assert found
    late = [f"{name}: {why}" for name, name_runtime in found.items()
            if (why := too_close_to_deprecation(name_runtime, date.today()))]
    assert late == []


@pytest.mark.parametrize("stage", STAGES)
def test_every_python_function_runs_on_the_stacks_python(request, stage):
    """The Chalice functions, and the two-way custom resource's handler where the stage has one.
    CDK's own providers (AwsCustomResource, the Provider framework) are Node.js."""
    found = functions(request.getfixturevalue(stage))
    python = {name: r for name, r in found.items() if r.startswith("python")}
    assert {"APIHandler", "BatchWorker", "StatusIngest", "WebhookFanout", "WebhookDelivery"} <= set(python)
    assert set(python.values()) == {runtime.PYTHON.name}
    assert all(r.startswith("nodejs") for name, r in found.items() if name not in python)
    if stage in ("mms_template", "sms_voice_template"):
        assert "InboundReply" in python and any(name.startswith("TwoWayHandler") for name in python)


def test_the_runtime_is_the_newest_python_aws_cdk_lib_knows():
    """cdk-nag's AwsSolutions-L1 asks each function for the newest runtime of its family in
    aws-cdk-lib's ``Runtime.ALL``; the stack acknowledges no L1 finding (the check after the SAM
    transform in test_infra.py sees the Chalice functions)."""
    pythons = [r.name for r in lambda_.Runtime.ALL if r.name.startswith("python")]
    assert max(pythons, key=runtime.version) == runtime.PYTHON.name
    assert runtime.version(runtime.PYTHON.name) >= (3, 13)


def test_the_stack_acknowledges_no_runtime_finding(template, sms_voice_template):
    for synthesized in (template, sms_voice_template):
        for resource in synthesized.to_json()["Resources"].values():
            for ack in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                assert "AwsSolutions-L1" not in ack["id"], ack


# -- the wheels in the package -------------------------------------------------------------------------

def test_packaged_wheels_need_at_most_amazon_linux_2023s_glibc():
    assert f"glibc {GLIBC['glibc']} |" in GLIBC["quote"]
    assert runtime.GLIBC == tuple(int(p) for p in GLIBC["glibc"].split("."))


@pytest.mark.parametrize("tag, runs", [
    ("py3-none-any", True),
    ("py2.py3-none-any", False),  # a compressed tag set; a WHEEL file lists each tag on its own line
    ("cp314-cp314-manylinux_2_34_x86_64", True),
    ("cp314-cp314-manylinux2014_x86_64", True),
    ("cp314-cp314-manylinux1_x86_64", True),
    ("cp312-abi3-manylinux_2_17_x86_64", True),
    ("cp314-cp314-manylinux_2_35_x86_64", False),  # newer glibc than Amazon Linux 2023's
    ("cp311-cp311-manylinux2014_x86_64", False),  # what a python3.11 package would hold
    ("cp314-cp314-manylinux2014_aarch64", False),
    ("cp314-cp314-musllinux_1_2_x86_64", False),
    ("cp314-cp314-linux_x86_64", False),  # built on this machine, against its glibc
])
def test_which_wheel_tags_run_on_the_runtime(tag, runs):
    assert (tag in runtime.supported_tags(runtime.PYTHON.name, "x86_64")) is runs


def wheel(name: str, version: str, tags: list[str], requires: list[str] = ()) -> dict[str, str]:
    info = f"{name}-{version}.dist-info"
    return {f"{info}/WHEEL": "Wheel-Version: 1.0\n" + "".join(f"Tag: {t}\n" for t in tags),
            f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                + "".join(f"Requires-Dist: {r}\n" for r in requires)}


def package(tmp_path: Path, *wheels: dict[str, str], requirements: str) -> list[str]:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("app.py", "")
        for files in wheels:
            for name, text in files.items():
                z.writestr(name, text)
    (tmp_path / "deployment.zip").write_bytes(archive.getvalue())
    (tmp_path / "requirements.txt").write_text(requirements)
    return runtime.package_problems(tmp_path / "deployment.zip", tmp_path / "requirements.txt",
                                    runtime.PYTHON.name, "x86_64")


def test_the_package_check_finds_a_wheel_for_another_python_and_a_missing_dependency(tmp_path):
    sound = [wheel("pure", "1.0", ["py3-none-any"], ["helper>=2; python_version >= '3.13'",
                                                     "backport; python_version < '3.12'",
                                                     "extra-only; extra == 'speed'"]),
             wheel("helper", "2.1", ["cp314-cp314-manylinux_2_17_x86_64", "cp314-cp314-manylinux2014_x86_64"])]
    assert package(tmp_path, *sound, requirements="pure==1.0  # comment\n") == []
    # A package built for the venv's Python 3.11.
    (problem,) = package(tmp_path, sound[0], wheel("helper", "2.1", ["cp311-cp311-manylinux2014_x86_64"]),
                         requirements="pure==1.0\n")
    assert "helper 2.1" in problem and "does not run on" in problem
    # A dependency the runtime's Python needs (a marker the packaging Python would skip), absent.
    (problem,) = package(tmp_path, sound[0], requirements="pure==1.0\n")
    assert "needs helper>=2" in problem and "lacks" in problem
    # Too old a version; an extra asked for; a requirement with no distribution at all.
    problems = package(tmp_path, sound[0], wheel("helper", "1.9", ["py3-none-any"]),
                       requirements="pure[speed]==1.0\nmissing==3\n")
    assert len(problems) == 3 and any("has helper 1.9" in p for p in problems)
    assert any("extra-only" in p for p in problems) and any("needs missing==3" in p for p in problems)


def test_every_wheel_in_the_deployment_package_runs_on_the_functions_runtime(template, synth_dir):
    """The zip the synth produced (the Chalice functions' one asset in cdk.out): every wheel's tags
    read from its WHEEL file, every requirement present, for the runtime and architecture the
    template gives the functions."""
    resources = template.to_json()["Resources"]
    chalice = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    (key,) = {p["CodeUri"]["Key"] for p in chalice.values()}
    ((name_runtime, architecture),) = {(p["Runtime"], *p["Architectures"]) for p in chalice.values()}
    zip_path = synth_dir / "cdk.out" / f"asset.{key}"
    supported = runtime.supported_tags(name_runtime, runtime.MACHINES[architecture])
    with zipfile.ZipFile(zip_path) as archive:
        wheel_files = [n for n in archive.namelist() if n.endswith(".dist-info/WHEEL")]
        tags = {n.split("/")[0]: [line.split(":", 1)[1].strip() for line in archive.read(n).decode().splitlines()
                                  if line.startswith("Tag:")] for n in wheel_files}
    assert {"aws_lambda_powertools", "phonenumberslite", "standardwebhooks"} <= {d.split("-")[0] for d in tags}
    assert [d for d, t in tags.items() if not set(t) & supported] == []
    assert runtime.package_problems(zip_path, APP_DIR / "requirements.txt", name_runtime,
                                    runtime.MACHINES[architecture]) == []
