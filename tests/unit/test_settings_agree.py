"""Every pipeline setting has one source, and the places that pass it on or document it agree.

settings.py reads the variables; docker-compose.yml sets them for the services (x-pipeline-env);
dagster.yaml passes them on to run containers; .env.example and the README document the ones an
operator may change. A variable added to one place and forgotten in another fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "user_code" / "jaffle_platform" / "settings.py"
# Set inside the images (docker/Dockerfile), not by compose.
FIXED_IN_IMAGE = {"DBT_PROJECT_DIR"}
# Secrets: the stack hands them to init only, which writes them into a volume (the variable is
# read only outside the stack; the file's path has a default).
NOT_IN_ENVIRONMENTS = {"JAFFLE_ALERT_URLS", "JAFFLE_ALERT_URLS_FILE"}
# Instance settings: every Dagster process gets them from x-dagster-env, runs from env_vars.
INSTANCE_ENV = {"DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_DB"}


def settings_vars() -> set[str]:
    return set(
        re.findall(r'_(?:env\w*|positive_number)\("([A-Z][A-Z0-9_]+)"', SETTINGS.read_text())
    )


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def pipeline_env() -> dict[str, str]:
    return compose()["x-pipeline-env"]


def operator_vars() -> set[str]:
    """Pipeline variables compose takes from the operator's environment (`${NAME...}`)."""
    found = set()
    for value in pipeline_env().values():
        found |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", str(value)))
    return found


def test_settings_reads_the_variables_compose_sets() -> None:
    assert settings_vars() - FIXED_IN_IMAGE - NOT_IN_ENVIRONMENTS == set(pipeline_env())


def test_alert_urls_reach_init_only() -> None:
    services = compose()["services"]
    holders = sorted(
        name for name, service in services.items()
        if "JAFFLE_ALERT_URLS" in (service.get("environment") or {})
    )  # fmt: skip
    assert holders == ["init"]


def test_run_containers_get_every_pipeline_variable() -> None:
    config = yaml.safe_load((ROOT / "dagster_home" / "dagster.yaml").read_text())
    passed = set(config["run_launcher"]["config"]["env_vars"])
    assert passed == set(pipeline_env()) | INSTANCE_ENV


def test_env_example_and_readme_document_every_operator_variable() -> None:
    env_example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", env_example, re.MULTILINE))
    missing_example = operator_vars() - documented
    assert not missing_example, f".env.example lacks {sorted(missing_example)}"
    in_readme = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    # The README's tables may group several variables in one cell (`JAFFLE_MIN_*`).
    wildcards = [w[:-1] for w in re.findall(r"`([A-Z][A-Z0-9_]*_\*)`", readme)]
    missing_readme = {
        v
        for v in operator_vars() | settings_vars()
        if v not in in_readme and not any(v.startswith(w) for w in wildcards)
    }
    assert not missing_readme, f"README lacks {sorted(missing_readme)}"


def test_every_variable_compose_interpolates_is_in_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text))
    documented = set(
        re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert used - documented == set(), sorted(used - documented)
