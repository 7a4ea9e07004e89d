"""The alert parts that need no run: URL handling, daemon heartbeat bookkeeping, load cost."""

from __future__ import annotations

import os
import subprocess
import sys

from jaffle_platform.defs.alerts import daemons
from jaffle_platform.defs.alerts.daemons import DaemonWatch, look
from jaffle_platform.defs.alerts.delivery import load_targets

T = 1_000_000.0


def test_urls_are_split_as_apprise_splits_them_and_shown_without_secrets():
    targets = load_targets(
        "json://127.0.0.1:9/hook, mailtos://me:pa55word@example.com?to=ops@example.com  "
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    )
    assert targets.problems == []
    labels = [t.label for t in targets.targets]
    assert labels[0] == "json://127.0.0.1:9/hook"
    assert labels[1].startswith("mailtos://me:****@example.com")
    assert labels[2].startswith("slack://T...2/A...D/T...Q")
    assert not any("pa55word" in x or "TIiajkdnla" in x for x in labels)


def test_empty_means_off_and_each_bad_url_is_named_by_position():
    assert load_targets("").off and load_targets("  ").off
    targets = load_targets("json://127.0.0.1:9/ mailto:// xyz://token123,slack://abc")
    assert [t.label for t in targets.targets] == ["json://127.0.0.1:9/"]
    bad = "is not a valid Apprise URL"
    assert targets.problems == [
        f"JAFFLE_ALERT_URLS: URL 2 of 4 (mailto://…) {bad}: Could not load E-Mail URL",
        f"JAFFLE_ALERT_URLS: URL 3 of 4 (xyz://…) {bad}: Unparseable URL",
        f"JAFFLE_ALERT_URLS: URL 4 of 4 (slack://…) {bad}: Could not load Slack URL",
    ]
    assert "token123" not in " ".join(targets.problems)


def test_text_apprise_would_drop_or_glue_to_a_url_is_reported():
    targets = load_targets("hooks.example.com/alert json://127.0.0.1:9/ https//typo")
    assert targets.targets == []
    assert targets.problems == [
        "JAFFLE_ALERT_URLS: the text before the first URL is not an Apprise URL "
        "(each URL starts with scheme://)",
        "JAFFLE_ALERT_URLS: URL 1 of 1 (json://…) is not a valid Apprise URL: it contains a "
        "space (URLs are separated by spaces or commas, each starting with scheme://)",
    ]


def test_a_thread_is_reported_once_when_stale_and_once_when_back():
    watched = ["SCHEDULER", "QUEUED_RUN_COORDINATOR"]
    fresh = {"SCHEDULER": T, "QUEUED_RUN_COORDINATOR": T}
    first = look(watched, fresh, T + 10, DaemonWatch())
    assert first.newly_stale == {} and first.back == []

    stale = {**fresh, "SCHEDULER": T - 500}
    second = look(watched, stale, T + 10, first.watch)
    assert second.newly_stale == {"SCHEDULER": T - 500}
    third = look(watched, stale, T + 40, second.watch)
    assert third.stale == {"SCHEDULER": T - 500} and third.newly_stale == {}

    back = look(watched, {**fresh, "SCHEDULER": T + 50}, T + 60, third.watch)
    assert back.back == ["SCHEDULER"] and back.newly_stale == {}
    assert look(watched, {**fresh, "SCHEDULER": T + 50}, T + 90, back.watch).back == []


def test_a_thread_that_never_heartbeat_gets_the_tolerance_to_start():
    watched = ["FRESHNESS_DAEMON"]
    early = look(watched, {}, T, DaemonWatch())
    assert early.stale == {} and early.watch.missing_since == {"FRESHNESS_DAEMON": T}
    carried = DaemonWatch.from_json(early.watch.to_json())
    still = look(watched, {}, T + daemons.TOLERANCE_S - 1, carried)
    assert still.stale == {}
    late = look(watched, {}, T + daemons.TOLERANCE_S + 1, still.watch)
    assert late.newly_stale == {"FRESHNESS_DAEMON": None}


def test_loading_the_code_location_does_not_import_apprise():
    """Apprise costs about 2.5 s to import and load its plugins: paid when an alert is sent, not
    by every run process, which loads the definitions too."""
    code = (
        "import sys; from jaffle_platform.definitions import defs; "
        "assert {s.name for s in defs.sensors} >= {'run_alerts', 'daemon_alerts'}; "
        "print('apprise' in sys.modules)"
    )
    env = {**os.environ, "JAFFLE_ALERT_URLS": "json://127.0.0.1:9/"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
