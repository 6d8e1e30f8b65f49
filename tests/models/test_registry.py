"""The model registry: content-named versions, idempotent and atomic publishing, listing,
and operator messages for unknown versions."""

from __future__ import annotations

import doctest
import json
import os
import shutil
from pathlib import Path

import pytest

import models.registry
from models.errors import ModelsError
from models.model_dir import read_model_dir
from models.registry import (
    REGISTRY_FILE,
    VERSION_PATTERN,
    ModelRegistry,
    ModelRegistryError,
    UnknownVersionError,
    content_sha256,
)
from schemas.control import LABEL_PATTERN


def write_model_dir(path: Path, name: str = "sessattn", seed: int = 0) -> Path:
    """A model directory that :func:`models.model_dir.read_model_dir` accepts: the registry
    copies and names files, it never runs the scorer, so ``model.onnx`` holds stand-in bytes
    (``seed`` changes them, and so the version)."""
    path.mkdir(parents=True, exist_ok=True)
    items = [f"sku-{n}" for n in range(5)]
    (path / "model.onnx").write_bytes(b"onnx stand-in %d" % seed)
    (path / "vocab.json").write_text(json.dumps({"items": items}))
    (path / "config.json").write_text(json.dumps({"dim": 8}))
    (path / "meta.json").write_text(json.dumps({
        "name": name, "version": f"v{seed}", "created_at": "2026-12-02T10:00:00+00:00",
        "architecture": "sessattn", "n_items": len(items), "max_seq_len": 20,
        "training_data_fingerprint": "f" * 16, "onnx": {"opset": 17}}))
    return path


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry")


def test_publish_copies_the_directory_under_a_content_version(registry: ModelRegistry,
                                                              tmp_path: Path) -> None:
    source = write_model_dir(tmp_path / "model")
    info = registry.publish(source)
    assert info.version == f"sessattn-{content_sha256(source)[:12]}"
    assert VERSION_PATTERN.fullmatch(info.version) and LABEL_PATTERN.fullmatch(info.version)
    assert info.name == "sessattn" and info.meta["n_items"] == 5
    assert info.path == registry.path_of(info.version) == registry.root / info.version
    copy = read_model_dir(info.path)  # a model directory the worker can load
    assert (copy.path / "model.onnx").read_bytes() == (source / "model.onnx").read_bytes()
    marker = json.loads((info.path / REGISTRY_FILE).read_text())
    assert marker["content_sha256"] == content_sha256(source) == content_sha256(info.path)
    assert registry.has(info.version) and registry.info(info.version) == info


def test_publishing_the_same_files_again_is_a_no_op(registry: ModelRegistry,
                                                    tmp_path: Path) -> None:
    first = registry.publish(write_model_dir(tmp_path / "one"))
    again = registry.publish(write_model_dir(tmp_path / "two"))  # same files elsewhere
    assert again == first
    assert [info.version for info in registry.versions()] == [first.version]
    assert sorted(p.name for p in registry.root.iterdir()) == [first.version]  # no leftovers


def test_different_files_give_a_different_version_listed_oldest_first(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    first = registry.publish(write_model_dir(tmp_path / "one", seed=1))
    second = registry.publish(write_model_dir(tmp_path / "two", name="my model/v2", seed=2))
    assert first.version != second.version
    assert second.version.startswith("my-model-v2-")
    assert second.name == "my model/v2"
    assert [info.version for info in registry.versions()] == [first.version, second.version]
    assert first.published_at_ms <= second.published_at_ms


def test_a_publish_that_died_half_way_is_invisible(registry: ModelRegistry,
                                                   tmp_path: Path) -> None:
    """The copy is made under a hidden name and renamed: until the rename nothing lists it,
    and a crash leaves only a hidden directory behind."""
    info = registry.publish(write_model_dir(tmp_path / "model"))
    crashed = registry.root / ".publish-0123"
    shutil.copytree(info.path, crashed)
    (registry.root / "lost+found").mkdir()
    half = registry.root / "sessattn-aaaaaaaaaaaa"
    half.mkdir()  # a version directory without its registry.json marker
    assert [v.version for v in registry.versions()] == [info.version]
    assert not registry.has("sessattn-aaaaaaaaaaaa")


def test_publish_renames_a_complete_copy_into_place(registry: ModelRegistry, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    renamed: list[tuple[Path, set[str]]] = []
    real_rename = os.rename

    def watching_rename(src: Path, dst: Path) -> None:
        renamed.append((Path(dst), {p.name for p in Path(src).iterdir()}))
        real_rename(src, dst)

    monkeypatch.setattr(models.registry.os, "rename", watching_rename)
    info = registry.publish(write_model_dir(tmp_path / "model"))
    assert renamed == [(info.path, {"model.onnx", "vocab.json", "config.json", "meta.json",
                                    REGISTRY_FILE})]


def test_a_failed_rename_leaves_nothing_behind(registry: ModelRegistry, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_rename(src: Path, dst: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(models.registry.os, "rename", failing_rename)
    with pytest.raises(ModelRegistryError, match="No space left on device"):
        registry.publish(write_model_dir(tmp_path / "model"))
    assert list(registry.root.iterdir()) == []


def test_publishing_something_that_is_not_a_model_directory_says_so(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    with pytest.raises(ModelRegistryError, match="cannot publish .*does not exist"):
        registry.publish(tmp_path / "nowhere")
    broken = write_model_dir(tmp_path / "broken")
    (broken / "vocab.json").write_text(json.dumps({"items": ["only-one"]}))
    with pytest.raises(ModelRegistryError, match="vocab.json has 1 items"):
        registry.publish(broken)
    assert issubclass(ModelRegistryError, ModelsError)


def test_an_unknown_version_lists_the_known_ones(registry: ModelRegistry,
                                                 tmp_path: Path) -> None:
    with pytest.raises(UnknownVersionError, match="does not exist; publish one"):
        registry.path_of("sessattn-0123456789ab")
    info = registry.publish(write_model_dir(tmp_path / "model"))
    with pytest.raises(UnknownVersionError) as raised:
        registry.path_of("sessattn-0123456789ab")
    assert f"it holds: {info.version}" in str(raised.value)
    assert "streamrec models list" in str(raised.value)
    for bad in ("../registry", "", "trending", info.version + "/x"):
        assert not registry.has(bad)
        with pytest.raises(UnknownVersionError):
            registry.path_of(bad)


def test_a_damaged_version_is_reported_with_the_fix(registry: ModelRegistry,
                                                    tmp_path: Path) -> None:
    info = registry.publish(write_model_dir(tmp_path / "model"))
    (info.path / REGISTRY_FILE).write_text("{not json")
    with pytest.raises(ModelRegistryError, match="damaged.*publish its model directory again"):
        registry.versions()


def test_the_content_hash_covers_paths_and_bytes(tmp_path: Path) -> None:
    one = write_model_dir(tmp_path / "one")
    base = content_sha256(one)
    (one / REGISTRY_FILE).write_text("{}")
    assert content_sha256(one) == base  # the registry's own marker is not content
    (one / "extra").mkdir()
    (one / "extra" / "notes.txt").write_text("x")
    assert content_sha256(one) != base
    two = write_model_dir(tmp_path / "two")
    (two / "model.onnx").rename(two / "model2.onnx")
    assert content_sha256(two) != base


def test_the_docstring_examples_run() -> None:
    result = doctest.testmod(models.registry)
    assert result.attempted > 0 and result.failed == 0
