"""The model registry: published model versions in a directory the workers share.

``streamrec models publish MODEL_DIR`` copies a directory written by ``streamrec train`` into
the registry (``STREAMREC_MODEL_REGISTRY``, e.g. a volume mounted by every worker) under a
version named after its content; the control topic then says which version is served
(:mod:`streams.control`). Layout::

    REGISTRY/
      sessattn-3f9a0c12d4e5/     one version: the model directory's files, as published,
        model.onnx, vocab.json,  plus registry.json (version, name, published_at_ms,
        meta.json, ...           content_sha256, source)
      .publish-<random>/         a publish in progress (or one that crashed): ignored

A version is ``<meta name>-<12 hex digits>``: the start of a sha256 over the directory's
files (sorted relative paths and their bytes), so publishing the same files twice gives the
same version and no second copy, and a version's files never change. A publish copies into a
hidden directory inside the registry and renames it into place (``os.rename`` is atomic on
one file system), so a worker never sees half a version. Versions are never deleted by
streamrec; removing an old one by hand is safe once no promotion or experiment names it.

The registry is an interface — :meth:`publish`, :meth:`versions`, :meth:`path_of` (and
:meth:`has`) — and the worker only ever asks for ``path_of(version)``: a local directory
holding that version, which it then loads. This class keeps versions on a (shared) file
system, where ``path_of`` is the version's own directory. An object store (S3, GCS) would slot
in as another class with the same methods: ``publish`` uploads the files under
``<prefix>/<version>/`` and writes ``registry.json`` last (the marker that the version is
complete, as an object store has no atomic rename); ``versions`` lists the markers; and
``path_of`` *fetches*: it downloads the version into a local cache directory (to a temporary
name, renamed when complete, checked against ``content_sha256``) unless it is already there,
and returns that directory. Nothing else changes: the control topic carries versions, not
paths. See ``docs/lifecycle-registry.md``.

This module needs the standard library and :mod:`models.model_dir` only: it never imports
PyTorch (a worker resolves versions with it).

>>> import tempfile
>>> registry = ModelRegistry(Path(tempfile.mkdtemp()))
>>> registry.versions(), registry.has("sessattn-0123456789ab")
([], False)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from models.errors import ModelsError
from models.model_dir import read_model_dir

log = logging.getLogger(__name__)

REGISTRY_FILE: Final = "registry.json"
"""What the registry adds to a published version (left out of its content hash)."""

HASH_DIGITS: Final = 12
VERSION_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,114}-[0-9a-f]{12}")
"""What a version looks like: a name (as the control topic's labels allow) and 12 hex digits."""

_TEMP_PREFIX: Final = ".publish-"
_NAME_CHARS: Final = re.compile(r"[^A-Za-z0-9._-]+")
_CHUNK: Final = 1 << 20


class ModelRegistryError(ModelsError):
    """The model registry could not be read or written: the message names the directory and
    the problem (not a model directory, no permission, disk full...). Check
    ``STREAMREC_MODEL_REGISTRY`` points at the shared registry directory and that this
    process may write there, then run the command again (publishing is idempotent)."""


class UnknownVersionError(ModelRegistryError):
    """A version was asked for that the registry does not hold: the message lists the ones it
    has. Publish the model first (``streamrec models publish MODEL_DIR``) or use a listed
    version (``streamrec models list``)."""


@dataclass(frozen=True)
class VersionInfo:
    """One published version."""

    version: str
    name: str
    """The model's name (``meta.json``'s ``name``)."""
    published_at_ms: int
    path: Path
    """The version's directory (a model directory, plus ``registry.json``)."""
    meta: Mapping[str, Any]
    """The model's ``meta.json``."""


class Registry(Protocol):
    """What the rest of streamrec needs from a registry (see the module docstring for an
    object-store implementation)."""

    def publish(self, model_dir: Path) -> VersionInfo: ...

    def versions(self) -> list[VersionInfo]: ...

    def path_of(self, version: str) -> Path: ...

    def has(self, version: str) -> bool: ...


class ModelRegistry:
    """A registry kept in a directory (a volume every worker mounts)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def publish(self, model_dir: Path) -> VersionInfo:
        """Copy ``model_dir`` into the registry; its version (the same for the same files).

        Raises :class:`ModelRegistryError` when ``model_dir`` is not a valid model directory
        or the registry cannot be written."""
        source = Path(model_dir)
        try:
            read_model_dir(source)
        except ModelsError as exc:
            raise ModelRegistryError(f"cannot publish {source}: {exc}") from exc
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelRegistryError(f"cannot create the registry {self.root}: {exc}") from exc
        staging = self.root / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
        try:
            return self._publish_via(source, staging)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _publish_via(self, source: Path, staging: Path) -> VersionInfo:
        try:
            shutil.copytree(source, staging, symlinks=False)
        except (OSError, shutil.Error) as exc:
            raise ModelRegistryError(
                f"cannot copy {source} into the registry {self.root}: {exc}") from exc
        digest = content_sha256(staging)  # of the copy: what the workers will load
        name = str(read_model_dir(staging).meta["name"])
        version = f"{_safe_name(name)}-{digest[:HASH_DIGITS]}"
        target = self.root / version
        if target.is_dir():
            log.info("%s is already published as %s", source, version)
            return self._info(version)
        marker = {"version": version, "name": name, "published_at_ms": time.time_ns() // 10**6,
                  "content_sha256": digest, "source": str(source.resolve())}
        try:
            (staging / REGISTRY_FILE).write_text(json.dumps(marker, indent=2) + "\n",
                                                 encoding="utf-8")
            os.rename(staging, target)
        except OSError as exc:
            if target.is_dir():  # published at the same moment by someone else
                return self._info(version)
            raise ModelRegistryError(
                f"cannot write version {version} into the registry {self.root}: {exc}") from exc
        log.info("published %s as %s in %s", source, version, self.root)
        return self._info(version)

    def versions(self) -> list[VersionInfo]:
        """Every published version, oldest first (none when the directory does not exist)."""
        infos = [self._info(path.name) for path in self._version_dirs()]
        return sorted(infos, key=lambda info: (info.published_at_ms, info.version))

    def has(self, version: str) -> bool:
        """Whether ``version`` is published here."""
        return (_is_version(version) and (self.root / version / REGISTRY_FILE).is_file())

    def path_of(self, version: str) -> Path:
        """The directory holding ``version``, ready to load. Raises
        :class:`UnknownVersionError` (listing the known versions) when there is none."""
        if not self.has(version):
            raise UnknownVersionError(self._unknown_message(version))
        return self.root / version

    def info(self, version: str) -> VersionInfo:
        """What the registry knows of ``version`` (:class:`UnknownVersionError` if nothing)."""
        return self._info(self.path_of(version).name)

    def _version_dirs(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.iterdir()):
            if _is_version(path.name) and (path / REGISTRY_FILE).is_file():
                yield path

    def _info(self, version: str) -> VersionInfo:
        path = self.root / version
        try:
            marker = json.loads((path / REGISTRY_FILE).read_text(encoding="utf-8"))
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            return VersionInfo(version=version, name=str(marker["name"]),
                               published_at_ms=int(marker["published_at_ms"]), path=path,
                               meta=meta)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelRegistryError(
                f"version {version} in {self.root} is damaged ({exc}); publish its model "
                f"directory again after removing {path}") from exc

    def _unknown_message(self, version: str) -> str:
        known = [path.name for path in self._version_dirs()]
        if not known:
            where = "does not exist" if not self.root.is_dir() else "holds no versions"
            return (f"version {version!r} is not in the model registry {self.root}: it "
                    f"{where}; publish one with 'streamrec models publish MODEL_DIR'")
        shown = ", ".join(known[-20:]) + (f" (and {len(known) - 20} more)"
                                          if len(known) > 20 else "")
        return (f"version {version!r} is not in the model registry {self.root}; it holds: "
                f"{shown} (see 'streamrec models list')")


def content_sha256(directory: Path) -> str:
    """sha256 over a directory's files: each file's relative path (``/``-separated, sorted),
    its size and its bytes; the registry's own ``registry.json`` at the top is left out.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("x")
    >>> content_sha256(folder) == content_sha256(folder)
    True
    """
    digest = hashlib.sha256()
    files = sorted((path.relative_to(directory).as_posix(), path)
                   for path in Path(directory).rglob("*") if path.is_file())
    for relative, path in files:
        if relative == REGISTRY_FILE:
            continue
        encoded = relative.encode("utf-8", "surrogateescape")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _safe_name(name: str) -> str:
    """A model name as the start of a version: letters, digits, '.', '_', '-'.

    >>> _safe_name("sessattn"), _safe_name("my model/v2"), _safe_name("--")
    ('sessattn', 'my-model-v2', 'model')
    """
    cleaned = _NAME_CHARS.sub("-", name).lstrip("._-")[:100].rstrip("-")
    return cleaned or "model"


def _is_version(name: str) -> bool:
    return VERSION_PATTERN.fullmatch(name) is not None
