"""What a run asks of dbt: its window of load days, a full refresh, or the tests alone."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from jaffle_platform.defs.dbt.runs import (
    FULL_REFRESH_TAG,
    LoadWindow,
    dbt_build_args,
    full_refresh_requested,
)

DAY = dt.date(2018, 1, 5)


def test_a_day_is_the_half_open_window_passed_as_vars():
    args = dbt_build_args(LoadWindow(DAY, DAY + dt.timedelta(days=1)), full_refresh=False)
    assert args[:2] == ["build", "--vars"]
    assert json.loads(args[2]) == {"min_day": "2018-01-05", "max_day": "2018-01-06"}
    assert args[3:] == ["--exclude", "resource_type:unit_test"], "unit tests run in full runs"


def test_no_window_or_a_full_refresh_takes_every_day():
    window = LoadWindow(DAY, DAY + dt.timedelta(days=7))
    assert dbt_build_args(None, full_refresh=False) == ["build"]
    assert dbt_build_args(window, full_refresh=True) == ["build", "--full-refresh"]
    assert dbt_build_args(None, full_refresh=False, checks_only=True) == ["test"]


def test_an_empty_window_is_refused():
    with pytest.raises(ValueError, match="empty window"):
        LoadWindow(DAY, DAY)


def test_full_refresh_tag():
    assert full_refresh_requested({FULL_REFRESH_TAG: "true"})
    assert full_refresh_requested({FULL_REFRESH_TAG: " TRUE "})
    assert not full_refresh_requested({FULL_REFRESH_TAG: "false"})
    assert not full_refresh_requested({})
    with pytest.raises(ValueError, match="jaffle/full_refresh='yes'"):
        full_refresh_requested({FULL_REFRESH_TAG: "yes"})
