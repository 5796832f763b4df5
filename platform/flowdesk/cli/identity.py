"""`flowdesk user ...` and `flowdesk apikey ...`: people, passwords, roles and API keys.

The work is done by `flowdesk.security.identity`; these handlers open the database
(migrating the platform tables first, so a fresh database works), read passwords
without echoing them, print, and turn refusals into one line on stderr with exit
status 1. Usage errors (a malformed role, a missing password on a non-terminal) exit 2.

A new API key is the only thing printed on stdout by `apikey create`, so scripts can
capture it (`KEY=$(flowdesk apikey create ...)`); the notes go to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

from ._common import database_error, migrated_engine

__all__ = ["register"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class _Usage(Exception):
    """Bad arguments found after parsing (exit 2)."""


def register(subparsers: Any) -> None:
    """Add `user` and `apikey` to the `flowdesk` parser's subcommands."""
    user = subparsers.add_parser("user", help="create users, set passwords and roles")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = _command(user_sub, "create", "add a user", _user_create)
    create.add_argument("username", metavar="USERNAME")
    create.add_argument("--name", help="display name (default: the username)")
    create.add_argument("--email")
    _password_options(create, allow_none=True)
    _role_option(create, "grant this role (repeatable), e.g. service_desk:agent or *:admin")

    set_password = _command(user_sub, "set-password", "set a user's password", _set_password)
    set_password.add_argument("username", metavar="USERNAME")
    _password_options(set_password, allow_none=False)

    roles = _command(user_sub, "roles", "show, add or remove a user's roles", _user_roles)
    roles.add_argument("username", metavar="USERNAME")
    roles.add_argument("--add", type=_role, action="append", default=[], metavar="APP:ROLE")
    roles.add_argument("--remove", type=_role, action="append", default=[], metavar="APP:ROLE")

    apikey = subparsers.add_parser("apikey", help="create, list and revoke API keys")
    apikey_sub = apikey.add_subparsers(dest="apikey_command", required=True, metavar="ACTION")
    key_create = _command(apikey_sub, "create", "make an API key (printed once)", _key_create)
    key_create.add_argument("--user", required=True, metavar="USERNAME")
    key_create.add_argument("--name", required=True, help="what the key is for")
    _role_option(key_create, "keep only this role of the user's (repeatable; default: all)")
    key_create.add_argument("--app", help="let the key act in this app only")
    key_create.add_argument("--expires-in", type=_days, metavar="DAYS",
                            help="lifetime in days (default: until revoked)")

    key_list = _command(apikey_sub, "list", "list API keys (never their secrets)", _key_list)
    key_list.add_argument("--user", metavar="USERNAME", help="only this user's keys")
    key_list.add_argument("--all", action="store_true", help="include revoked keys")
    key_list.add_argument("--format", choices=("text", "json"), default="text")

    revoke = _command(apikey_sub, "revoke", "revoke an API key", _key_revoke)
    revoke.add_argument("prefix", metavar="PREFIX", help="as listed, e.g. fdk_3f9a1c")


def _command(sub: Any, name: str, help_: str, handler: Callable[[argparse.Namespace], int]) -> Any:
    parser = sub.add_parser(name, help=help_)
    parser.add_argument("--database-url", help="default: FLOWDESK_DATABASE_URL or .flowdesk/")
    parser.set_defaults(handler=lambda args: _guarded(handler, args))
    return parser


def _password_options(parser: Any, *, allow_none: bool) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--password", help="the password (visible to other local users in the "
                        "process list: prefer the prompt or --password-stdin)")
    source.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin")
    if allow_none:
        source.add_argument("--no-password", action="store_true",
                            help="no password: the user cannot log in with one")
    parser.add_argument("--no-policy", action="store_true",
                        help="accept a password that fails the policy (demo data only)")


def _role_option(parser: Any, help_: str) -> None:
    parser.add_argument("--role", dest="roles", type=_role, action="append", default=None,
                        metavar="APP:ROLE", help=help_)


def _role(text: str) -> str:
    from flowdesk.security.identity.users import parse_role

    try:
        app, role = parse_role(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return f"{app}:{role}"


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number of days of at least 1")
    return value


def _guarded(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Refusals and database errors as one line, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from flowdesk.security.identity.errors import IdentityError

    try:
        return handler(args)
    except _Usage as error:
        action = getattr(args, "user_command", None) or getattr(args, "apikey_command", "")
        print(f"flowdesk {args.command} {action}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (IdentityError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    except SQLAlchemyError as error:
        print(database_error(error), file=sys.stderr)
        return EXIT_ERRORS
    except EOFError:
        print("error: no password given", file=sys.stderr)
        return EXIT_ERRORS


def _engine(args: argparse.Namespace) -> Any:
    return migrated_engine(args.database_url)


def _read_password(args: argparse.Namespace) -> str | None:
    """From --password, the first line of stdin, or a prompt asked twice; None for
    --no-password."""
    if getattr(args, "no_password", False):
        return None
    if args.password is not None:
        return str(args.password)
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise _Usage("--password-stdin: stdin is empty")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise _Usage("no password given: use the prompt (on a terminal), --password-stdin "
                     "or --password" + (", or --no-password" if "no_password" in args else ""))
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _user_create(args: argparse.Namespace) -> int:
    from flowdesk.security.identity.users import create_user

    password = _read_password(args)
    with _engine(args) as engine, engine.begin() as connection:
        user_id = create_user(
            connection,
            args.username,
            name=args.name or args.username,
            email=args.email,
            password=password,
            roles=args.roles or (),
            policy=not args.no_policy,
        )
    roles = ", ".join(sorted(args.roles or [])) or "no roles"
    print(f"created user {args.username} (id {user_id}) with {roles}"
          + ("" if password is not None else "; no password: they cannot log in yet"))
    return EXIT_OK


def _set_password(args: argparse.Namespace) -> int:
    from flowdesk.security.identity.passwords import set_password
    from flowdesk.security.identity.sessions import revoke_user_sessions
    from flowdesk.security.identity.users import user_id_of

    password = _read_password(args)
    assert password is not None  # set-password has no --no-password
    with _engine(args) as engine, engine.begin() as connection:
        user_id = user_id_of(connection, args.username)
        set_password(connection, user_id, password, policy=not args.no_policy)
        ended = revoke_user_sessions(connection, user_id)
    print(f"set the password of {args.username}; signed out {ended} web session(s)")
    return EXIT_OK


def _user_roles(args: argparse.Namespace) -> int:
    from flowdesk.security.identity.users import grant_roles, revoke_roles, user_id_of, user_roles

    with _engine(args) as engine, engine.begin() as connection:
        user_id = user_id_of(connection, args.username)
        added = grant_roles(connection, user_id, args.add)
        removed = revoke_roles(connection, user_id, args.remove)
        held = user_roles(connection, user_id)
    for role in added:
        print(f"added {role}", file=sys.stderr)
    for role in removed:
        print(f"removed {role}", file=sys.stderr)
    for app, role in held:
        print(f"{app}:{role}")
    if not held:
        print(f"{args.username} holds no roles", file=sys.stderr)
    return EXIT_OK


def _key_create(args: argparse.Namespace) -> int:
    from flowdesk.security.identity.apikeys import create_api_key
    from flowdesk.security.identity.users import user_id_of

    lifetime = dt.timedelta(days=args.expires_in) if args.expires_in else None
    with _engine(args) as engine, engine.begin() as connection:
        user_id = user_id_of(connection, args.user)
        text, key = create_api_key(
            connection, user_id, args.name, roles=args.roles, app=args.app, expires_in=lifetime
        )
    print(text)
    until = f"expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "no expiry"
    print(f"created API key {key.prefix} `{key.name}` for {key.username} ({until}); "
          "store it now: it is not shown again", file=sys.stderr)
    return EXIT_OK


def _key_list(args: argparse.Namespace) -> int:
    from flowdesk.security.identity.apikeys import list_api_keys
    from flowdesk.security.identity.users import user_id_of

    now = dt.datetime.now(dt.UTC)
    with _engine(args) as engine, engine.connect() as connection:
        user_id = user_id_of(connection, args.user) if args.user else None
        keys = list_api_keys(connection, user_id=user_id, include_revoked=args.all)
    if args.format == "json":
        rows = [{**key.__dict__, "status": key.status(now)} for key in keys]
        print(json.dumps(rows, indent=2, default=_iso))
        return EXIT_OK
    if not keys:
        print("no API keys", file=sys.stderr)
    for key in keys:
        print("  ".join([
            key.prefix,
            key.status(now).ljust(7),
            key.username,
            f"`{key.name}`",
            f"roles={','.join(key.roles) if key.roles is not None else 'all'}",
            f"app={key.app or 'all'}",
            f"expires={_when(key.expires_at)}",
            f"last_used={_when(key.last_used_at)}",
        ]))
    return EXIT_OK


def _key_revoke(args: argparse.Namespace) -> int:
    from flowdesk.security.identity.apikeys import revoke_api_key

    with _engine(args) as engine, engine.begin() as connection:
        revoked = revoke_api_key(connection, args.prefix)
    print(f"revoked API key {args.prefix}" if revoked else f"API key {args.prefix} was "
          "already revoked")
    return EXIT_OK


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def _when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%dT%H:%MZ}" if value else "never"
