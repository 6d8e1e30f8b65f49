"""The one text an item is embedded from: title, category path, brand, and a short
description — the same recipe for the live catalogue and for offline training.

>>> item_text("Digital pH meter", ["Lab", "Meters"], "Apera", None)
'Digital pH meter. Lab > Meters. Apera.'
>>> item_text("Gloves", None, None, "Nitrile, powder-free.")
'Gloves. Nitrile, powder-free.'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

SHORT_DESCRIPTION: Final = 300
"""Descriptions up to this many characters join the text; longer ones would drown the
title (the encoder reads one sentence-sized meaning), so they are left out."""


def item_text(
    title: str,
    category: Sequence[str] | None,
    brand: str | None,
    description: str | None,
) -> str:
    parts = [title.strip().rstrip(".")]
    if category:
        parts.append(" > ".join(c.strip() for c in category if c.strip()))
    if brand and brand.strip():
        parts.append(brand.strip().rstrip("."))
    text = ". ".join(p for p in parts if p) + "."
    if description and 0 < len(description.strip()) <= SHORT_DESCRIPTION:
        text += " " + description.strip()
    return text
