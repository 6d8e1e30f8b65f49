"""The README stays true: every setting documented, the two commands, CI runs `make test`."""

from __future__ import annotations

from pathlib import Path

from streams.settings import Settings, settings_table

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [f"STREAMREC_{n.upper()}" for n in Settings.model_fields
               if f"`STREAMREC_{n.upper()}`" not in readme]
    assert missing == []


def test_readme_gives_the_two_commands_and_ci_runs_make_test() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    lines = [ln.strip() for ln in (ROOT / ".ci/run").read_text().splitlines()]
    assert "make test" in lines


def test_the_settings_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- settings:begin -->") + len("<!-- settings:begin -->")
    end = readme.index("<!-- settings:end -->")
    assert readme[start:end].strip() == settings_table(), (
        "regenerate with: streamrec settings --markdown")
