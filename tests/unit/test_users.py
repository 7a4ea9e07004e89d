"""jaffle-users and the users file: bootstrap, add/passwd/list/remove, file safety."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from jaffle_server import users
from jaffle_server.roles import Role


@pytest.fixture
def auth_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "auth"
    monkeypatch.setenv("JAFFLE_USERS_FILE", str(directory / "users.json"))
    monkeypatch.setenv("JAFFLE_SESSION_KEY_FILE", str(directory / "session_key"))
    monkeypatch.delenv("JAFFLE_ADMIN_PASSWORD", raising=False)
    return directory


def run(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return users.main(argv)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_bootstrap_generates_admin_once(auth_dir: Path) -> None:
    generated = users.bootstrap(auth_dir, None)
    assert generated and len(generated) >= users.MIN_PASSWORD_LENGTH
    admin = users.load_users(auth_dir / "users.json")["admin"]
    assert admin.role is Role.ADMIN
    assert users.verify_password(admin, generated)
    key = (auth_dir / "session_key").read_bytes()
    assert mode(auth_dir / "users.json") == 0o600 and mode(auth_dir / "session_key") == 0o600
    # Second start: nothing regenerated, nothing shown.
    assert users.bootstrap(auth_dir, None) is None
    assert (auth_dir / "session_key").read_bytes() == key
    assert users.load_users(auth_dir / "users.json")["admin"] == admin


def test_bootstrap_with_given_password_shows_nothing(auth_dir: Path) -> None:
    assert users.bootstrap(auth_dir, "given-password-123") is None
    admin = users.load_users(auth_dir / "users.json")["admin"]
    assert users.verify_password(admin, "given-password-123")


def test_bootstrap_command_prints_banner_once(
    auth_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, ["bootstrap"]) == 0
    out = capsys.readouterr().out
    password = next(line.strip() for line in out.splitlines()[3:] if line.strip())
    assert "====" in out and users.verify_password(
        users.load_users(auth_dir / "users.json")["admin"], password
    )
    assert run(monkeypatch, ["bootstrap"]) == 0
    assert password not in capsys.readouterr().out


def test_bootstrap_command_reads_admin_password_from_env(
    auth_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JAFFLE_ADMIN_PASSWORD", "from-the-env-12345")
    assert run(monkeypatch, ["bootstrap"]) == 0
    assert "from-the-env-12345" not in capsys.readouterr().out
    admin = users.load_users(auth_dir / "users.json")["admin"]
    assert users.verify_password(admin, "from-the-env-12345")


def test_add_list_passwd_remove(
    auth_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, ["add", "vera", "--role", "viewer"], "viewer-password-1\n") == 0
    assert run(monkeypatch, ["add", "otto", "--role", "operator"], "operator-password-1\n") == 0
    capsys.readouterr()
    assert run(monkeypatch, ["list"]) == 0
    listing = capsys.readouterr().out
    assert "vera" in listing and "viewer" in listing and "otto" in listing
    assert "argon2" not in listing and "password" not in listing.lower()

    before = users.load_users(auth_dir / "users.json")["vera"]
    assert run(monkeypatch, ["passwd", "vera"], "another-password-2\n") == 0
    after = users.load_users(auth_dir / "users.json")["vera"]
    assert users.verify_password(after, "another-password-2")
    assert after.fingerprint != before.fingerprint and after.created == before.created

    assert run(monkeypatch, ["add", "vera", "--role", "operator", "--update"], "x" * 12) == 0
    assert users.load_users(auth_dir / "users.json")["vera"].role is Role.OPERATOR

    assert run(monkeypatch, ["remove", "vera"]) == 0
    assert "vera" not in users.load_users(auth_dir / "users.json")
    assert mode(auth_dir / "users.json") == 0o600
    assert [p.name for p in auth_dir.iterdir()] == ["users.json"]  # no temp files left


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["add", "vera", "--role", "viewer"], "\n", "empty password"),
        (["add", "vera", "--role", "viewer"], "short\n", "too short"),
        (["add", "Vera Smith", "--role", "viewer"], "long-enough-pass\n", "invalid user name"),
        (["add", "admin", "--role", "viewer"], "long-enough-pass\n", "exists"),
        (["passwd", "nobody"], "long-enough-pass\n", "no user"),
        (["remove", "nobody"], "", "no user"),
    ],
)
def test_refusals_exit_1_with_a_message(
    auth_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    message: str,
) -> None:
    users.bootstrap(auth_dir, "admin-password-123")
    before = (auth_dir / "users.json").read_text()
    assert run(monkeypatch, argv, stdin) == 1
    assert message in capsys.readouterr().err
    assert (auth_dir / "users.json").read_text() == before


def test_unknown_role_is_a_usage_error(auth_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exc:
        run(monkeypatch, ["add", "vera", "--role", "root"], "long-enough-pass\n")
    assert exc.value.code == 2


def test_users_file_holds_hashes_only(auth_dir: Path) -> None:
    users.bootstrap(auth_dir, "admin-password-123")
    raw = (auth_dir / "users.json").read_text()
    assert "admin-password-123" not in raw
    assert json.loads(raw)["users"]["admin"]["password_hash"].startswith("$argon2id$")


def test_unknown_user_costs_a_verification() -> None:
    assert users.verify_password(None, "anything-at-all") is False
