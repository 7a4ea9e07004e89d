"""init's handling of the alert URLs: written for the readers, replaced, removed when unset."""

from __future__ import annotations

import stat
from pathlib import Path

from jaffle_server.secrets import write_alert_urls


def test_alert_urls_are_written_private_replaced_and_removed(tmp_path: Path) -> None:
    urls = tmp_path / "urls"
    write_alert_urls(" slack://T/B/X json://hook:8000/ ", urls)
    assert urls.read_text() == "slack://T/B/X json://hook:8000/\n"
    assert stat.S_IMODE(urls.stat().st_mode) == 0o400
    write_alert_urls("json://other:8000/", urls)
    assert urls.read_text() == "json://other:8000/\n", "the operator's change applies on `up`"
    write_alert_urls("  ", urls)
    assert not urls.exists(), "empty means alerts off: no stale URLs left behind"
    write_alert_urls(None, urls)
    assert not urls.exists()
    assert list(tmp_path.iterdir()) == [], "no temporary file left"


def test_without_the_alerts_volume_nothing_is_written(tmp_path: Path) -> None:
    write_alert_urls("json://hook:8000/", tmp_path / "missing" / "urls")
    assert not (tmp_path / "missing").exists()
