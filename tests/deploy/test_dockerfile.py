"""Dockerfile and .dockerignore: linted by hadolint, then checked for intent."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from tests.deploy.support import DOCKERFILE, ROOT, find_tool, run_tool

# What the image is built from: the project metadata, its licence and its runtime packages.
BUILD_SOURCES = {"pyproject.toml", "README.md", "LICENSE", "streams", "models", "schemas"}
# Training and export only (the [train] extra); the image scores the exported ONNX model.
TRAIN_ONLY = {"torch", "onnx"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def runtime_stage() -> list[tuple[str, str]]:
    """Instructions of the last stage, the image that ships."""
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_hadolint_passes() -> None:
    hadolint = find_tool("hadolint")
    result = run_tool([hadolint, str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_python_311_slim() -> None:
    (arg,) = [a for k, a in instructions() if k == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert arg.split("=", 1)[1].startswith("python:3.11-slim")


def test_runtime_runs_the_cli_as_a_non_root_user() -> None:
    stage = dict(runtime_stage())
    user = stage["USER"].split(":")[0]
    assert user not in {"0", "root"}
    assert json.loads(stage["ENTRYPOINT"]) == ["streamrec"]
    assert json.loads(stage["CMD"]) == ["worker"]
    assert stage["EXPOSE"] == "6066"


def test_healthcheck_probes_healthz() -> None:
    stage = dict(runtime_stage())
    assert "/healthz" in stage["HEALTHCHECK"]
    assert "CMD" in stage["HEALTHCHECK"]


def test_build_copies_only_what_the_context_lets_through() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") + 1 :], ".dockerignore re-includes what the build needs"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for keyword, arguments in instructions():
        if keyword == "COPY" and not arguments.startswith("--from="):
            *sources, _destination = arguments.split()
            assert set(sources) <= allowed, f"COPY {sources} is excluded by .dockerignore"
    for excluded in (".venv", ".git", "tests", "models_out", "devtools"):
        assert f"!{excluded}" not in ignore


def pip_installs() -> list[list[str]]:
    """The arguments (options dropped) of every `pip install` in the Dockerfile's RUNs."""
    found = []
    for keyword, arguments in instructions():
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", arguments):
            words = shlex.split(command)
            for i in range(len(words) - 1):
                if words[i].endswith("pip") and words[i + 1] == "install":
                    found.append([w for w in words[i + 2 :] if not w.startswith("-")])
    return found


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def build_stage() -> list[tuple[str, str]]:
    """Instructions of the first stage, which installs the package into /opt/venv."""
    steps = instructions()
    froms = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    assert len(froms) == 2 and steps[froms[0]][1].endswith(" AS build"), steps
    return steps[froms[0] : froms[1]]


def build_args(stage: list[tuple[str, str]]) -> dict[str, str | None]:
    """``ARG NAME[=default]`` of a stage: name -> default (None: no default)."""
    found: dict[str, str | None] = {}
    for keyword, arguments in stage:
        if keyword == "ARG":
            name, equals, default = arguments.partition("=")
            found[name] = default if equals else None
    return found


def install_step() -> str:
    """The build stage's RUN that installs the project (the only one running pip)."""
    (step,) = [a for k, a in build_stage() if k == "RUN" and "pip install" in a]
    return step


def run_install_step(tmp_path: Path, **overrides: str) -> list[dict[str, Any]]:
    """Run the install RUN as Docker would (``/bin/sh -c``, build arguments in the
    environment) with ``pip`` and ``streamrec`` replaced by stubs that record their arguments
    and the index pip would be given; ``overrides`` play ``--build-arg NAME=VALUE``."""
    stubs, calls = tmp_path / "bin", tmp_path / "calls.jsonl"
    stubs.mkdir()
    for name in ("pip", "streamrec"):
        stub = stubs / name
        stub.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            f"with open({str(calls)!r}, 'a') as log:\n"
            "    log.write(json.dumps({'argv': [os.path.basename(sys.argv[0]), *sys.argv[1:]],\n"
            "                          'extra_index': os.environ.get('PIP_EXTRA_INDEX_URL')}))\n"
            "    log.write('\\n')\n"
        )
        stub.chmod(0o755)
    args = build_args(build_stage())
    unknown = set(overrides) - set(args)
    assert not unknown, f"the build stage declares no ARG {sorted(unknown)}"
    env = {"PATH": f"{stubs}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(tmp_path)}
    env |= {name: value for name, value in args.items() if value is not None}
    env |= overrides
    result = subprocess.run(["/bin/sh", "-c", install_step()], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in calls.read_text().splitlines()]


def test_extras_is_a_build_argument_empty_by_default() -> None:
    """`docker build --build-arg EXTRAS=[train]` builds the training image; without it, the
    worker image. Declared in the build stage, where the install runs."""
    args = build_args(build_stage())
    assert args.get("EXTRAS") == "", f"ARG EXTRAS= (empty default) in the build stage: {args}"
    assert "EXTRAS" not in build_args(runtime_stage()), "the runtime stage installs nothing"
    assert '".${EXTRAS}"' in install_step(), "the project with its extras, quoted (a glob)"


def test_the_default_build_installs_the_project_without_extras(tmp_path: Path) -> None:
    calls = run_install_step(tmp_path)
    pip = [c for c in calls if c["argv"][0] == "pip"]
    assert [c["argv"] for c in pip] == [["pip", "install", "."]], (
        f"the worker image: the project alone, with no extras: {pip}")
    assert pip[0]["extra_index"] is None, "no index beyond PyPI for the worker image"
    assert [c["argv"][:3] for c in calls][-1] == ["streamrec", "text-model", "fetch"]


def test_the_train_build_installs_pytorch_from_the_cpu_index(tmp_path: Path) -> None:
    calls = run_install_step(tmp_path, EXTRAS="[train]")
    pip = [c for c in calls if c["argv"][0] == "pip"]
    assert [c["argv"] for c in pip] == [["pip", "install", ".[train]"]]
    assert pip[0]["extra_index"] == "https://download.pytorch.org/whl/cpu"
    assert [c["argv"][:3] for c in calls][-1] == ["streamrec", "text-model", "fetch"]


def test_the_train_extra_pins_torch() -> None:
    """The training image installs the exact torch of pyproject.toml (its +cpu build)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    pins = [r for r in extras["train"] if requirement_name(r) == "torch"]
    assert len(pins) == 1 and re.fullmatch(r"torch==\d+(\.\d+)+", pins[0].replace(" ", "")), pins


def test_only_the_project_install_is_exempt_from_hadolint() -> None:
    """The one `hadolint ignore` is DL3013 for ".${EXTRAS}" (DL3013 exempts a bare "." only)."""
    lines = DOCKERFILE.read_text().splitlines()
    pragmas = [i for i, line in enumerate(lines) if "hadolint" in line and "ignore" in line
               and line.lstrip("# ").startswith("hadolint")]
    assert [lines[i].strip() for i in pragmas] == ["# hadolint ignore=DL3013"]
    assert lines[pragmas[0] + 1].startswith("RUN ") and "pip install" in " ".join(
        lines[pragmas[0] + 1 : pragmas[0] + 4])


def test_no_other_step_installs_packages() -> None:
    installs = pip_installs()
    assert installs == [[".${EXTRAS}"]], f"install the project alone: {installs}"
    steps = " ".join(f"{k} {a}" for k, a in runtime_stage() if k in {"RUN", "ARG", "ENV"})
    for word in ("torch", "[train]", "[dev]", "download.pytorch.org", "pip install"):
        assert word not in steps.lower(), f"the runtime stage mentions {word!r}"


def test_runtime_dependencies_need_no_torch() -> None:
    """`pip install .` installs [project].dependencies: torch and onnx belong to [train]."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {requirement_name(r) for r in project["dependencies"]}
    assert not names & TRAIN_ONLY, (
        f"runtime dependencies the image need not have: {names & TRAIN_ONLY}"
    )


def test_only_the_runtime_packages_are_copied() -> None:
    copied = set()
    for keyword, arguments in instructions():
        if keyword == "COPY" and not arguments.startswith("--from="):
            *sources, _destination = arguments.split()
            copied |= {source.rstrip("/") for source in sources}
    assert copied == BUILD_SOURCES, f"COPY {sorted(copied - BUILD_SOURCES)} is not runtime code"


def test_devtools_stay_out_of_the_build_context() -> None:
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert ignore.index("*") < min(i for i, line in enumerate(ignore) if line.startswith("!")), (
        ".dockerignore is an allow-list: '*' first, then what the build needs"
    )
    reincluded = {line[1:].strip("/") for line in ignore if line.startswith("!")}
    assert reincluded == BUILD_SOURCES
