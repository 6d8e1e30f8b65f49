"""Feedback records for the experiment tests."""

from __future__ import annotations

from typing import Any

from schemas.feedback import Attribution, Served

T0 = 1_795_456_800_000  # 2026-11-23T18:00:00Z
EXPERIMENT = "exp-1"


def served(rec: str, user: str, variant: str | None, experiment: str | None = EXPERIMENT,
           at_ms: int = T0) -> Served:
    return Served(rec, user, experiment, variant, "sessattn", "v1", 20, at_ms)


def attributed(rec: str, user: str, variant: str | None, item: str, event_type: str,
               revenue: float | None = None, experiment: str | None = EXPERIMENT,
               event_id: str | None = None, at_ms: int = T0 + 60_000, **extra: Any
               ) -> Attribution:
    values: dict[str, Any] = dict(
        recommendation_id=rec, user_id=user, experiment=experiment, variant=variant,
        model_name="sessattn", model_version="v1", item_id=item, position=1,
        event_type=event_type, event_id=event_id or f"e-{rec}-{item}-{event_type}",
        event_time_ms=at_ms, delay_ms=at_ms - T0, revenue=revenue, matched_by="window")
    values.update(extra)
    return Attribution(**values)


VARIANT_KEYS = {"users", "recommendations", "clicks", "carts", "purchases", "revenue",
                "revenue_per_user", "ctr", "ctr_ci95", "conversion", "conversion_ci95"}


def scenario() -> list[Served | Attribution]:
    """Two variants with duplicates everywhere. Expected, per variant:

    A: recommendations r1 r2 r3 r4 (users u1 u1 u2 u3 -> 3 users); clicks r1/i1, r1/i2, r3/i1
       (3 clicks, 2 clicked recommendations); a cart r1/i1; purchases r2/i5 (20.0) and
       r4/i6 (no price) -> 2 purchases, converted users u1 and u3, revenue 20.0.
    B: recommendations r5 r6 r7 (users u4 u5 u6); a click r5/i1; a purchase r6/i2 (12.5 x 2 =
       25.0) -> ctr 1/3, conversion 1/3, revenue 25.0.
    """
    records: list[Served | Attribution] = [
        served("r1", "u1", "A"), served("r2", "u1", "A"), served("r3", "u2", "A"),
        served("r4", "u3", "A"),
        served("r5", "u4", "B"), served("r6", "u5", "B"), served("r7", "u6", "B"),
        attributed("r1", "u1", "A", "i1", "click"),
        attributed("r1", "u1", "A", "i2", "click"),
        attributed("r3", "u2", "A", "i1", "click"),
        attributed("r1", "u1", "A", "i1", "add_to_cart"),
        attributed("r2", "u1", "A", "i5", "purchase", revenue=20.0),
        attributed("r4", "u3", "A", "i6", "purchase", revenue=None),
        attributed("r5", "u4", "B", "i1", "click"),
        attributed("r6", "u5", "B", "i2", "purchase", revenue=25.0),
        # another experiment, and no experiment: never counted
        served("r9", "u9", "A", experiment="exp-2"),
        attributed("r9", "u9", "A", "i1", "click", experiment="exp-2"),
        served("r10", "u10", None, experiment=None),
    ]
    # at-least-once: a crashed worker wrote a stretch of the log again, and a user clicked
    # the same item of the same recommendation twice (a new event, the same attribution)
    duplicates = [*records[:3], records[7], records[11], records[13],
                  attributed("r1", "u1", "A", "i1", "click", event_id="e-again")]
    return records + duplicates
