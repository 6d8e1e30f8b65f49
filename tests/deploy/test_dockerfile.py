"""Dockerfile and .dockerignore: linted by hadolint, then checked for intent."""

from __future__ import annotations

import json
import re
import shlex
import tomllib

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


def test_image_installs_the_project_without_extras() -> None:
    installs = pip_installs()
    assert installs == [["."]], f"install the project alone, with no extras: {installs}"
    steps = " ".join(f"{k} {a}" for k, a in instructions() if k in {"RUN", "ARG", "ENV"})
    for word in ("torch", "[train]", "[dev]", "download.pytorch.org"):
        assert word not in steps.lower(), f"the image build mentions {word!r}"


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
