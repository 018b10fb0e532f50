"""A configuration mistake stops every command with one line naming the
variable, before anything starts; so does a backfill date in the future."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

import starter
from core.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings are read anew from this test's environment."""
    monkeypatch.setattr(starter, "configure_logging", lambda settings: None)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOG_LEVEL", "LOUD"),
        ("DATABASE_URL", "notaurl"),
        ("BASELINKER_BLOCK_TIMEZONE", "Mars/Olympus"),
        ("SIMULATOR_PORT", "99999"),
        ("TEMPORAL_UI_PORT", "0"),
        ("TEMPORAL_ADDRESS", "localhost:notaport"),
        ("POLL_IDLE_MAX_SECONDS", "-5"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """`status` with the bad value exits 2 with `error: bad configuration`."""
    monkeypatch.setenv(variable, value)

    result = CliRunner().invoke(starter.app, ["status"])

    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: bad configuration: ")
    assert variable in result.stderr.replace("\n", "")
    assert "Traceback" not in result.output


def test_a_lower_case_log_level_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOG_LEVEL=debug means DEBUG."""
    monkeypatch.setenv("LOG_LEVEL", "debug")

    assert get_settings().log_level == "DEBUG"


def test_a_backfill_from_the_future_is_refused() -> None:
    """`backfill --since` a day that has not come yet exits 2 before it starts."""
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()

    result = CliRunner().invoke(starter.app, ["backfill", "--since", tomorrow])

    assert result.exit_code == 2
    assert f"--since {tomorrow} is in the future" in result.stderr
