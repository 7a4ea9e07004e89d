"""Sending alerts to the Apprise URLs in JAFFLE_ALERT_URLS, each tried a few times.

Apprise is imported on first use, not with the definitions: importing it and loading its plugins
costs about 2.5 s, which every run process would pay for nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jaffle_platform import settings

# A failed send is retried twice, after 1 s and 3 s: enough for a webhook that restarts or a
# dropped connection, short enough for a sensor tick (Dagster stops one after 60 s).
RETRY_PAUSES_S = (1.0, 3.0)
# Once a tick has spent this long sending, the next event waits for the next tick.
TICK_BUDGET_S = 30.0
# Where Apprise sees a URL start (apprise.utils.parse.URL_START_RE).
URL_START = re.compile(r"(?<![a-z0-9])[a-z0-9]+?://", re.IGNORECASE)


@dataclass(frozen=True)
class Alert:
    """One message. kind is Apprise's notify type: failure, warning, success or info."""

    title: str
    body: str
    kind: str = "failure"


@dataclass
class Target:
    """One URL. label is safe to show: Apprise's privacy form, without its options."""

    label: str
    service: Any  # apprise.Apprise holding this one URL


@dataclass
class Targets:
    targets: list[Target]
    problems: list[str]  # one line per URL that could not be used, naming it without secrets

    @property
    def off(self) -> bool:
        return not self.targets and not self.problems


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else ""


def load_targets(raw: str | None = None) -> Targets:
    """The URLs in JAFFLE_ALERT_URLS (or raw), split as Apprise splits them (spaces, commas).

    A URL Apprise cannot use (unknown scheme, missing token, bad port) is reported by its position
    and scheme only, since the rest of it is often a secret; the other URLs still get alerts.
    """
    raw = settings.alert_urls() if raw is None else raw
    if not raw or not raw.strip():
        return Targets([], [])
    import apprise
    from apprise.utils.parse import parse_urls

    urls = parse_urls(raw)
    targets: list[Target] = []
    problems: list[str] = []
    first = URL_START.search(raw)
    if first and raw[: first.start()].strip(" ,;\t\r\n"):
        # Apprise would drop it without a word.
        problems.append(
            "JAFFLE_ALERT_URLS: the text before the first URL is not an Apprise URL "
            "(each URL starts with scheme://)"
        )
    for number, url in enumerate(urls, start=1):
        scheme = _scheme(url)
        shown = f"{scheme}://…" if scheme else "no scheme://"
        if any(c.isspace() for c in url.strip()):
            # Apprise glues text that is not a URL to the URL before it.
            problems.append(
                f"JAFFLE_ALERT_URLS: URL {number} of {len(urls)} ({shown}) is not a valid "
                "Apprise URL: it contains a space (URLs are separated by spaces or commas, "
                "each starting with scheme://)"
            )
            continue
        with apprise.LogCapture(level=apprise.logging.WARNING) as logs:
            service = apprise.Apprise.instantiate(url)
        if service is None:
            reason = _reason(_lines(logs)) or "Apprise does not accept it"
            problems.append(
                f"JAFFLE_ALERT_URLS: URL {number} of {len(urls)} ({shown}) is not a valid "
                f"Apprise URL: {reason}"
            )
            continue
        one = apprise.Apprise()
        one.add(service)
        label = service.url(privacy=True).split("?", 1)[0]
        targets.append(Target(label=label, service=one))
    if not urls:
        problems.append("JAFFLE_ALERT_URLS is set but holds no URL")
    return Targets(targets, problems)


def _lines(capture: Any) -> list[str]:
    """What Apprise logged into a LogCapture (a StringIO when given no file)."""
    return [line for line in capture.getvalue().splitlines() if line.strip()]


def _reason(log_lines: list[str]) -> str:
    """Apprise's last word on a refused URL ("Unparseable URL", "Could not load Slack URL"),
    without the URL: its earlier lines may quote the very token that was wrong."""
    if not log_lines:
        return ""
    text = log_lines[-1].split(" - ", 2)[-1]
    return " ".join(w for w in text.split() if "://" not in w).rstrip(" :")


@dataclass
class Delivery:
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "label: why (n tries)"
    nowhere: bool = False  # every URL was malformed

    @property
    def ok(self) -> bool:
        return not self.failed and not self.nowhere

    @property
    def summary(self) -> str:
        if self.nowhere:
            return "NOT delivered: no usable URL in JAFFLE_ALERT_URLS"
        parts = []
        if self.sent:
            parts.append(f"sent to {', '.join(self.sent)}")
        if self.failed:
            parts.append(f"NOT delivered to {'; '.join(self.failed)}")
        return "; ".join(parts)


class Sender:
    """Sends alerts for one sensor tick, within TICK_BUDGET_S.

    A URL that failed all its tries in this tick gets one try for each later alert of the tick,
    so a dead endpoint cannot hold the tick until Dagster kills it.
    """

    def __init__(
        self,
        targets: Targets,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.targets = targets
        self._sleep = sleep
        self._clock = clock
        self._started = clock()
        self._dead: set[str] = set()

    def out_of_time(self) -> bool:
        return self._clock() - self._started > TICK_BUDGET_S

    def send(self, alert: Alert) -> Delivery:
        import apprise

        delivery = Delivery()
        if not self.targets.targets:
            delivery.nowhere = True
        for target in self.targets.targets:
            pauses = () if target.label in self._dead else RETRY_PAUSES_S
            why = ""
            for attempt in range(len(pauses) + 1):
                if attempt:
                    self._sleep(pauses[attempt - 1])
                with apprise.LogCapture(level=apprise.logging.WARNING) as logs:
                    ok = target.service.notify(
                        body=alert.body, title=alert.title, notify_type=alert.kind
                    )
                if ok:
                    delivery.sent.append(target.label)
                    break
                lines = _lines(logs)
                why = lines[-1].split(" - ", 2)[-1].strip() if lines else "Apprise reported failure"
            else:
                self._dead.add(target.label)
                tries = len(pauses) + 1
                delivery.failed.append(f"{target.label}: {why} ({tries} tries)")
        return delivery
