"""A seeded catalogue for the synthetic stream: titles in English and Chinese per category.

Every item of :mod:`devtools.demo.generator` gets a record in the item schema. Items of one
category share their product noun, so their texts are close; a third of each category is
titled in Chinese, the rest in English, so content retrieval has to cross languages.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from devtools.demo.generator import GeneratorConfig, item_id

# (root category, English noun, Chinese noun) per generator category "cat-NN".
CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("Lab", "digital pH meter", "数字pH计"),
    ("Lab", "laboratory microscope", "实验室显微镜"),
    ("Lab", "glass beaker set", "玻璃烧杯套装"),
    ("Lab", "digital precision scale", "数字精密电子秤"),
    ("Safety", "nitrile disposable gloves", "一次性丁腈手套"),
    ("Safety", "safety goggles", "护目镜"),
    ("Safety", "hard hat helmet", "安全帽"),
    ("Safety", "hearing protection earmuffs", "隔音耳罩"),
    ("Tools", "cordless drill driver", "无绳电钻"),
    ("Tools", "adjustable wrench", "活动扳手"),
    ("Tools", "screwdriver set", "螺丝刀套装"),
    ("Tools", "digital caliper", "数显游标卡尺"),
    ("Office", "ballpoint pens", "圆珠笔"),
    ("Office", "stapler", "订书机"),
    ("Office", "notebook paper", "笔记本"),
    ("Office", "desk lamp", "台灯"),
    ("Kitchen", "stainless steel kettle", "不锈钢水壶"),
    ("Kitchen", "chef knife", "厨师刀"),
    ("Kitchen", "non-stick frying pan", "不粘煎锅"),
    ("Kitchen", "coffee grinder", "咖啡研磨机"),
)
ADJECTIVES = (("compact", "小巧"), ("professional", "专业"), ("heavy duty", "重型"),
              ("portable", "便携"), ("premium", "高级"), ("basic", "基础"))
BRANDS = ("Acme", "Borealis", "Cobalt", "Dyna", "Eon", "Fjord")


def category_path(config: GeneratorConfig, index: int) -> list[str]:
    root, english, _ = CATEGORIES[(index % config.categories) % len(CATEGORIES)]
    return [root, english[0].upper() + english[1:]]


def title_for(config: GeneratorConfig, index: int, *, chinese: bool, variant: int = 0) -> str:
    _root, english, chinese_noun = CATEGORIES[(index % config.categories) % len(CATEGORIES)]
    adjective_en, adjective_zh = ADJECTIVES[(index // config.categories + variant) % 6]
    if chinese:
        return f"{adjective_zh}{chinese_noun} {index % 97}型"
    return f"{adjective_en.capitalize()} {english}, model {index % 97}"


def generate_catalog(config: GeneratorConfig, *, seed: int = 11) -> list[dict[str, Any]]:
    """One item record per generator item (schema: schemas/item.schema.json)."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(config.items):
        chinese = index % 3 == 2
        records.append({
            "item_id": item_id(index),
            "title": title_for(config, index, chinese=chinese),
            "category": category_path(config, index),
            "brand": BRANDS[index % len(BRANDS)],
            "price": round(float(rng.uniform(3, 300)), 2),
            "currency": "EUR",
            "available": True,
        })
    return records


def new_item(config: GeneratorConfig, like_index: int, item: str, *, chinese: bool = False
             ) -> dict[str, Any]:
    """A brand-new item nobody has touched yet: the next edition of ``like_index``."""
    edition = " 2026新款" if chinese else ", 2026 edition"
    return {"item_id": item, "title": title_for(config, like_index, chinese=chinese) + edition,
            "category": category_path(config, like_index),
            "brand": BRANDS[like_index % len(BRANDS)],
            "price": 99.0, "currency": "EUR", "available": True}
