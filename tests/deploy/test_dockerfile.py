"""Dockerfile and .dockerignore: linted by hadolint, then checked for intent."""

from __future__ import annotations

import json
import re

from tests.deploy.support import DOCKERFILE, ROOT, find_tool, run_tool


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
    for excluded in (".venv", ".git", "tests", "models_out"):
        assert f"!{excluded}" not in ignore
