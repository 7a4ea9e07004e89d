"""The data contract is defined once: dbt, the generator and the settings agree with it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

from jaffle_platform import generate, settings
from jaffle_platform.defs.ingest.contract import (
    LOAD_DAY_COLUMN,
    ORDER_STATUSES,
    PAYMENT_METHODS,
    RAW_TABLES,
    dbt_vars,
)

DBT = settings.DEFAULT_DBT_PROJECT_DIR


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_dbt_project_vars_are_the_contracts_accepted_values():
    declared = load_yaml(DBT / "dbt_project.yml").get("vars", {})
    expected = dbt_vars()
    assert {k: declared.get(k) for k in expected} == expected, (
        "dbt_project.yml vars differ from jaffle_platform/defs/ingest/contract.py; set them to:\n"
        + yaml.safe_dump({"vars": expected}, default_flow_style=None, sort_keys=False)
    )


def test_dbt_accepted_values_tests_read_the_vars_not_a_copy():
    seen = set()
    for path in sorted((DBT / "models").rglob("*.yml")):
        for model in load_yaml(path).get("models", []):
            for column in model.get("columns", []):
                for test in column.get("data_tests", []):
                    if isinstance(test, dict) and "accepted_values" in test:
                        values = test["accepted_values"]["arguments"]["values"]
                        assert re.fullmatch(r"\{\{ var\('\w+'\) \}\}", values), (path, column)
                        seen.add(f"{model['name']}.{column['name']}")
    assert seen == {"stg_orders.status", "stg_payments.payment_method", "orders.status"}


def test_no_dbt_model_spells_out_the_value_lists():
    spelled = re.compile("|".join(rf"['\"]{v}['\"]" for v in (*ORDER_STATUSES, *PAYMENT_METHODS)))
    for path in sorted((DBT / "models").rglob("*")):
        if path.suffix in {".sql", ".yml"}:
            assert not spelled.search(path.read_text()), f"{path} quotes a contract value"


def test_orders_mart_documents_one_amount_column_per_payment_method():
    (orders,) = load_yaml(DBT / "models" / "marts" / "orders.yml")["models"]
    amounts = [c["name"] for c in orders["columns"] if c["name"].endswith("_amount")]
    assert amounts == [f"{m}_amount" for m in PAYMENT_METHODS]


def test_dbt_sources_declare_the_contracts_columns():
    """The tables' columns: the files' columns, and load_day for the daily tables."""
    (source,) = load_yaml(DBT / "models" / "staging" / "_sources.yml")["sources"]
    declared = {t["name"]: [c["name"] for c in t["columns"]] for t in source["tables"]}
    assert declared == {name: list(t.table_columns) for name, t in RAW_TABLES.items()}
    assert [n for n, t in RAW_TABLES.items() if LOAD_DAY_COLUMN in t.table_columns] == [
        "raw_orders",
        "raw_payments",
    ]


def test_contract_is_self_consistent():
    for table in RAW_TABLES.values():
        assert table.key in table.columns and table.key in table.not_null
        assert set(table.not_null) <= set(table.columns)
        assert set(table.ranges) <= set(table.columns)
        for col in table.accepted_values:
            assert table.columns[col] == "VARCHAR"
        assert set(table.integer_columns) <= set(table.ranges), "every integer has a range"


def test_generator_weights_follow_the_contracts_values():
    assert len(generate.STATUS_WEIGHTS) == len(ORDER_STATUSES)
    assert len(generate.METHOD_WEIGHTS) == len(PAYMENT_METHODS)
    last = generate.FIRST_DATE + generate.MAX_SPAN_DAYS
    assert str(last) < str(settings.max_date()), "generated dates stay inside the default range"


def test_load_rule_defaults(monkeypatch):
    for name in ("MIN_ID", "MIN_AMOUNT", "MIN_DATE", "MAX_DATE", "MIN_ROW_RATIO"):
        monkeypatch.delenv(f"JAFFLE_{name}", raising=False)
    today = dt.date.today()
    assert settings.min_id() == 1
    assert settings.min_amount() == 0
    assert settings.min_date() == dt.date(1900, 1, 1)
    assert dt.timedelta(days=365) <= settings.max_date() - today <= dt.timedelta(days=366)
    assert settings.min_row_ratio() == 0.5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JAFFLE_MIN_ID", "one", "JAFFLE_MIN_ID='one' is not a number"),
        ("JAFFLE_MAX_DATE", "next year", "is not a date"),
        ("JAFFLE_MIN_ROW_RATIO", "2", "not between 0 and 1"),
    ],
)
def test_bad_load_rule_settings_are_named(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    getter = {
        "JAFFLE_MIN_ID": settings.min_id,
        "JAFFLE_MAX_DATE": settings.max_date,
        "JAFFLE_MIN_ROW_RATIO": settings.min_row_ratio,
    }[name]
    with pytest.raises(ValueError, match=message):
        getter()
