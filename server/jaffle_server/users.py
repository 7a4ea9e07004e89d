"""`jaffle-users`: manages the webserver's users and session key (jaffle_server.user_store).

The store's names are re-exported here, where the rest of the stack and its docs import them."""

from __future__ import annotations

import argparse
import os
import sys

from jaffle_server.roles import ROLE_NAMES, parse_role
from jaffle_server.user_store import (
    MIN_PASSWORD_LENGTH,
    SESSION_KEY_FILE_NAME,
    USERS_FILE_NAME,
    UserError,
    add_user,
    bootstrap,
    load_users,
    read_session_key,
    remove_user,
    set_password,
    users_file,
    verify_password,
)

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "SESSION_KEY_FILE_NAME",
    "USERS_FILE_NAME",
    "add_user",
    "bootstrap",
    "build_parser",
    "load_users",
    "main",
    "read_session_key",
    "remove_user",
    "verify_password",
]


def _read_password_from_stdin() -> str:
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise UserError("passwords differ")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def _banner(password: str) -> str:
    rule = "=" * 72
    return (
        f"{rule}\n"
        f"  Dagster webserver: user 'admin' created with a generated password:\n\n"
        f"      {password}\n\n"
        f"  It is shown this once. Sign in, then change it with\n"
        f"      jaffle-users passwd admin\n"
        f"{rule}"
    )


def _cmd_bootstrap(_args: argparse.Namespace) -> int:
    had_users = bool(load_users(users_file()))
    generated = bootstrap(users_file().parent, os.environ.get("JAFFLE_ADMIN_PASSWORD") or None)
    if generated:
        print(_banner(generated))
    elif had_users:
        print(f"users: {users_file()} already has users; nothing changed")
    else:
        print("users: 'admin' created with the password from JAFFLE_ADMIN_PASSWORD")
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    user = add_user(
        users_file(),
        args.name,
        parse_role(args.role),
        _read_password_from_stdin(),
        update=args.update,
    )
    print(f"{'updated' if args.update else 'added'} {user.name} (role {user.role})")
    return 0


def _cmd_passwd(args: argparse.Namespace) -> int:
    set_password(users_file(), args.name, _read_password_from_stdin())
    print(f"password changed for {args.name}; their sessions have ended")
    return 0


def _cmd_list(_args: argparse.Namespace) -> int:
    users = load_users(users_file())
    print(f"{'NAME':<24} {'ROLE':<9} CREATED")
    for user in sorted(users.values(), key=lambda u: u.name):
        print(f"{user.name:<24} {user.role:<9} {user.created}")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    remove_user(users_file(), args.name)
    print(f"removed {args.name}; their sessions have ended")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaffle-users",
        description="Manage the Dagster webserver's users (file: $JAFFLE_USERS_FILE). "
        "Passwords are read from stdin, one line.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bootstrap", help="create the session key and, if no user exists, 'admin'")
    add = sub.add_parser("add", help="add a user; password from stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLE_NAMES)
    add.add_argument("--update", action="store_true", help="replace an existing user's role")
    passwd = sub.add_parser("passwd", help="change a user's password; password from stdin")
    passwd.add_argument("name")
    sub.add_parser("list", help="list users: name, role, created")
    remove = sub.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    return parser


_COMMANDS = {
    "bootstrap": _cmd_bootstrap,
    "add": _cmd_add,
    "passwd": _cmd_passwd,
    "list": _cmd_list,
    "remove": _cmd_remove,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except UserError as exc:
        print(f"jaffle-users: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"jaffle-users: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
