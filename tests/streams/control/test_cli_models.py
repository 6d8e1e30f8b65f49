"""``streamrec models`` in-process against the real broker: publish → promote → rollback,
each seen by a worker's control-topic reader; listing with and without the broker; the
operator errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.processes import free_port
from models.registry import ModelRegistry
from schemas.control import Promotion
from streams.control.topic import read_control_snapshot
from streams.settings import Settings
from tests.streams.control.conftest import Cli, Follower, use_settings


def publish(cli: Cli, model_dir: Path) -> str:
    code, out, err = cli("models", "publish", str(model_dir))
    assert code == 0, err
    return out.split()[-1]


def listing(cli: Cli) -> list[dict[str, object]]:
    code, out, err = cli("models", "list", "--json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_publish_promote_rollback_reach_every_worker(
    cli: Cli, settings: Settings, model_dirs: list[Path], follower: Follower
) -> None:
    follower.wait(lambda s: s.promotion is None, "the first read")
    first, second = publish(cli, model_dirs[0]), publish(cli, model_dirs[1])
    registry = ModelRegistry(settings.model_registry)  # type: ignore[arg-type]
    assert [info.version for info in registry.versions()] == [first, second]
    assert publish(cli, model_dirs[0]) == first  # idempotent
    code, out, _ = cli("models", "publish", str(model_dirs[0]))
    assert "already published" in out

    assert cli("models", "promote", first)[0] == 0
    seen = follower.wait(lambda s: s.promotion is not None, "the first promotion")
    assert seen.promotion.version == first and seen.promotion.history == ()  # type: ignore[union-attr]
    assert seen.promotion.reason == "promote"  # type: ignore[union-attr]
    assert [row["promoted"] for row in listing(cli)] == [True, False]

    code, out, _ = cli("models", "promote", second)
    assert code == 0 and f"promoted {second} (was {first})" in out
    seen = follower.wait(lambda s: s.promotion.version == second, "the second promotion")  # type: ignore[union-attr]
    assert seen.promotion.history == (first,)  # type: ignore[union-attr]
    code, out, _ = cli("models", "list")
    assert code == 0
    table = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert table[second].endswith("promoted") and not table[first].endswith("promoted")

    code, out, _ = cli("models", "rollback")
    assert code == 0 and f"rolled back from {second} to {first}" in out
    seen = follower.wait(lambda s: s.promotion.version == first, "the rollback")  # type: ignore[union-attr]
    assert seen.promotion == Promotion(first, (), seen.promotion.promoted_at_ms,  # type: ignore[union-attr]
                                       "rollback")

    code, _, err = cli("models", "rollback")
    assert code == 1
    assert "no version was promoted before it" in err and "models promote VERSION" in err
    assert [s.promotion.version for s in follower.snapshots[1:]] == [  # type: ignore[union-attr]
        first, second, first]


def test_promoting_the_promoted_version_writes_nothing(
    cli: Cli, settings: Settings, model_dirs: list[Path]
) -> None:
    version = publish(cli, model_dirs[0])
    assert cli("models", "promote", version)[0] == 0
    written = read_control_snapshot(settings).promotion
    code, out, _ = cli("models", "promote", version)
    assert code == 0 and "already promoted" in out
    assert read_control_snapshot(settings).promotion == written


def test_history_is_capped_and_trending_can_be_promoted(
    cli: Cli, settings: Settings, model_dirs: list[Path]
) -> None:
    versions = [publish(cli, d) for d in model_dirs]
    for step in range(23):
        assert cli("models", "promote", versions[step % 3])[0] == 0
    promotion = read_control_snapshot(settings).promotion
    assert promotion is not None and len(promotion.history) == 20
    assert cli("models", "promote", "trending")[0] == 0
    code, out, _ = cli("models", "list")
    assert "promoted: trending" in out
    assert [row["promoted"] for row in listing(cli)] == [False, False, False]


def test_an_unknown_version_is_refused_listing_the_known_ones(
    cli: Cli, settings: Settings, model_dirs: list[Path]
) -> None:
    version = publish(cli, model_dirs[0])
    code, _, err = cli("models", "promote", "sessattn-0123456789ab")
    assert code == 1
    assert f"it holds: {version}" in err and "streamrec models list" in err
    assert read_control_snapshot(settings).promotion is None


def test_rollback_with_nothing_promoted_says_what_to_do(cli: Cli) -> None:
    code, _, err = cli("models", "rollback")
    assert code == 1 and "nothing is promoted" in err


def test_publishing_a_broken_directory_is_an_operator_error(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("models", "publish", str(tmp_path / "nowhere"))
    assert (code, out) == (1, "")
    assert err.startswith("streamrec: error: cannot publish") and "does not exist" in err


def test_an_empty_registry_lists_nothing(cli: Cli) -> None:
    assert listing(cli) == []
    code, out, _ = cli("models", "list")
    assert code == 0 and "no versions in the model registry" in out


def test_list_without_the_broker_still_lists(
    settings: Settings, model_dirs: list[Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    offline = settings.model_copy(update={"broker_url": f"kafka://127.0.0.1:{free_port()}"})
    use_settings(monkeypatch, offline)
    cli = Cli(capsys)
    version = publish(cli, model_dirs[0])
    code, out, err = cli("models", "list", "--json")
    assert code == 0
    assert [(row["version"], row["promoted"]) for row in json.loads(out)] == [(version, None)]
    assert set(json.loads(out)[0]) == {"version", "name", "published_at", "promoted"}
    assert "promotion unknown" in err
    code, out, _ = cli("models", "list")
    assert code == 0 and version in out and "promotion unknown: " in out


def test_every_subcommand_needs_the_registry(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_settings(monkeypatch, settings.model_copy(update={"model_registry": None}))
    cli = Cli(capsys)
    for argv in (["publish", "x"], ["list"], ["promote", "v"], ["rollback"]):
        code, _, err = cli("models", *argv)
        assert code == 1, argv
        assert "STREAMREC_MODEL_REGISTRY is not set" in err, argv


def test_a_missing_subcommand_is_a_usage_error(cli: Cli) -> None:
    assert cli("models")[0] == 2
    assert cli("models", "promote")[0] == 2
