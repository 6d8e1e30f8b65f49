"""How the sources of a recommendation are combined: one documented rule, pure functions.

For a user the model ranked: the first ``k - content_slots`` items are the model's best; the
next ``content_slots`` go to the items whose text is closest to the user's recent items
(skipping what the model already chose); slots still empty are filled with the model's next
items, then with more content neighbours. So the model keeps the head of the list and text
similarity always gets a say — which is how an item nobody has touched yet (unknown to the
model) reaches users who look at similar things.

For a user the model could not rank (no model, or only items it does not know): content
neighbours lead, trending items fill the rest — similarity to what the user just viewed is
a better guess than popularity. For a user with no history at all: trending items, spread
over categories (:func:`spread_categories`).

>>> merge_ranked([("m1", 9.0), ("m2", 8.0), ("m3", 7.0)], [("c1", 0.9), ("m1", 0.8)],
...              k=3, content_slots=1)
[('m1', 9.0), ('m2', 8.0), ('c1', 0.9)]
>>> merge_leading([("c1", 0.9)], [("t1", 5.0), ("c1", 4.0)], k=3)
[('c1', 0.9), ('t1', 5.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Ranked = list[tuple[str, float]]


def merge_ranked(model: Sequence[tuple[str, float]], content: Sequence[tuple[str, float]],
                 *, k: int, content_slots: int) -> Ranked:
    head = max(0, k - content_slots)
    out: Ranked = list(model[:head])
    chosen = {item for item, _ in out}
    model_rest = [(i, s) for i, s in model[head:] if i not in chosen]
    for pair in content:
        if len(out) >= head + content_slots or len(out) >= k:
            break
        if pair[0] not in chosen:
            out.append(pair)
            chosen.add(pair[0])
    for pair in [*model_rest, *content]:
        if len(out) >= k:
            break
        if pair[0] not in chosen:
            out.append(pair)
            chosen.add(pair[0])
    return out


def merge_leading(first: Sequence[tuple[str, float]], then: Sequence[tuple[str, float]],
                  *, k: int) -> Ranked:
    out: Ranked = []
    chosen: set[str] = set()
    for pair in [*first, *then]:
        if len(out) >= k:
            break
        if pair[0] not in chosen:
            out.append(pair)
            chosen.add(pair[0])
    return out


def spread_categories(items: Sequence[tuple[str, float]],
                      category_of: Callable[[str], str | None], *, k: int) -> Ranked:
    """Round-robin over root categories in the order of each category's best item, keeping
    the order within a category; items without a category form one group.

    >>> cats = {"a": "Lab", "b": "Lab", "c": "Tools", "d": None}
    >>> spread_categories([("a", 4.0), ("b", 3.0), ("c", 2.0), ("d", 1.0)], cats.get, k=3)
    [('a', 4.0), ('c', 2.0), ('d', 1.0)]
    """
    groups: dict[str | None, list[tuple[str, float]]] = {}
    for pair in items:
        groups.setdefault(category_of(pair[0]), []).append(pair)
    out: Ranked = []
    queues = list(groups.values())
    depth = 0
    while len(out) < k and any(depth < len(q) for q in queues):
        for queue in queues:
            if depth < len(queue) and len(out) < k:
                out.append(queue[depth])
        depth += 1
    return out
