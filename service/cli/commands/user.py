"""``hierarchy user create|list|orgs|add-org|remove-org|set-role|set-primary``: users of the API
and, from release 6.4, the orgs they belong to (the SQL functions of migrations/0004 through
``users.change_membership``: they check, refuse with a message naming the user and the org, and
are audited as ``cli:<OS user>``)."""

from __future__ import annotations

import getpass

from psycopg import errors

from service import releases
from service.cli.context import Context
from service.cli.errors import EXIT_OK, EXIT_USAGE, CliError
from service.cli.parser import command, group
from service.names import PASSWORD_LENGTH, ROLES
from service.queries import SyncDb, by_form, query

USERS = by_form("users.list")
GET = by_form("users.get")
SQL = {
    "user_by_email": query("cli.user_by_email"),
    "change": query("users.change_membership"),
    "has_memberships": query("users.has_memberships"),
    "orgs": query("orgs.list"),
    "org": query("orgs.get"),
    "first_org": query("users.first_org"),
    "org_by_name": query("cli.org_by_name"),
}


def add_to(sub) -> None:
    user = group(sub, "user", "users of the API", "hierarchy user list")
    p = command(
        user,
        "create",
        create,
        "create a user (asks for the password on a terminal)",
        "hierarchy user create --email ops@example.com --role operator   # asks twice\n"
        "printf '%s\\n' \"$PW\" | hierarchy user create --email ci@example.com --role read_only "
        "--password-stdin",
    )
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--org", metavar="NAME", help="the user's org (default: the first org)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    command(user, "list", list_, "list users", "hierarchy user list --json")
    p = command(
        user,
        "orgs",
        orgs,
        "the orgs a user belongs to, its role in each, primary first",
        "hierarchy user orgs ops@example.com --json",
    )
    p.add_argument("email", metavar="EMAIL")
    for name, action, text, example, role in (
        (
            "add-org",
            "add",
            "add a user to an org with a role (release 6.4)",
            "hierarchy user add-org ops@example.com --org acme --role read_only",
            True,
        ),
        (
            "remove-org",
            "remove",
            "remove a user from an org, never its primary one (release 6.4)",
            "hierarchy user remove-org ops@example.com --org acme",
            False,
        ),
        (
            "set-role",
            "set_role",
            "give a user another role in one of its orgs (release 6.4)",
            "hierarchy user set-role ops@example.com --org acme --role operator",
            True,
        ),
        (
            "set-primary",
            "set_primary",
            "make one of a user's orgs its primary org (release 6.4)",
            "hierarchy user set-primary ops@example.com --org acme",
            False,
        ),
    ):
        p = command(user, name, change, text, example)
        p.set_defaults(action=action)
        p.add_argument("email", metavar="EMAIL")
        p.add_argument("--org", metavar="NAME", required=True)
        if role:
            p.add_argument("--role", required=True, choices=ROLES)
        if action == "add":
            p.add_argument("--primary", action="store_true", help="make it the user's primary org")


def create(ctx: Context, args) -> int:
    from service import users

    password = read_password(ctx, args.password_stdin)
    with ctx.database(releases.FIRST) as db:
        org = _org(db, args.org)
        try:
            row = users.create_user(db.conn, args.email, password, org["uuid"], args.role)
        except errors.UniqueViolation:
            raise CliError(f"a user with email {args.email} already exists") from None
        except errors.CheckViolation:
            raise CliError(
                f"'{args.email}' is not an email address (name@domain, at most 254 characters)"
            ) from None
    row["org_name"] = org["name"]
    ctx.output.emit(
        row,
        lambda r: ctx.output.print(f"created {r['role']} {r['email']} in org {r['org_name']} ({r['uuid']})"),
    )
    return EXIT_OK


def read_password(ctx: Context, from_stdin: bool) -> str:
    """The new user's password: one line of stdin, or asked twice on a terminal."""
    if from_stdin:
        password = ctx.stdin.readline().rstrip("\r\n")
    elif ctx.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the passwords differ; nothing changed", EXIT_USAGE)
    else:
        raise CliError("no password: pipe it in with --password-stdin, or run on a terminal", EXIT_USAGE)
    low, high = PASSWORD_LENGTH
    if not low <= len(password) <= high:
        raise CliError(f"the password must have {low} to {high} characters", EXIT_USAGE)
    return password


def _org(db: SyncDb, name: str | None) -> dict:
    if name is None:
        first = db.one(SQL["first_org"])
        if first is None:
            raise CliError("no org exists: run `hierarchy migrate`")
        return db.one(SQL["org"], org_id=first["uuid"])  # type: ignore[return-value]
    org = db.one(SQL["org_by_name"], name=name)
    if org is None:
        raise CliError(f"no org named '{name}'")
    return org


def _user(db: SyncDb, email: str) -> dict:
    found = db.one(SQL["user_by_email"], email=email)
    if found is None:
        raise CliError(f"no user with email {email}")
    return db.one(GET[memberships(db)], user_id=found["uuid"])  # type: ignore[return-value]


def _print_memberships(ctx: Context, user: dict) -> None:
    ctx.output.table(
        f"{user['email']}",
        ["org", "role", "primary"],
        [[m["org_name"], m["role"], "yes" if m["is_primary"] else ""] for m in user["memberships"]],
    )


def orgs(ctx: Context, args) -> int:
    with ctx.database(releases.FIRST) as db:
        user = _user(db, args.email)
    ctx.output.emit(user, lambda u: _print_memberships(ctx, u))
    return EXIT_OK


def change(ctx: Context, args) -> int:
    """add-org, remove-org, set-role, set-primary: one membership change, one transaction."""
    with ctx.database(releases.FIRST) as db:
        if not memberships(db):
            raise CliError(
                "org memberships need release 6.4 (one org per user before): run `hierarchy migrate`"
            )
        user = _user(db, args.email)
        org = _org(db, args.org)
        db.one(
            SQL["change"],
            action=args.action,
            user_id=user["uuid"],
            org_id=org["uuid"],
            role=getattr(args, "role", None),
            primary=getattr(args, "primary", None),
        )
        user = _user(db, args.email)
    ctx.output.emit(user, lambda u: _print_memberships(ctx, u))
    return EXIT_OK


def memberships(db: SyncDb) -> bool:
    """Whether the schema has release 6.4's org memberships (which statement form applies)."""
    return db.one(SQL["has_memberships"])["present"]  # type: ignore[index]


def list_(ctx: Context, args) -> int:
    with ctx.database(releases.FIRST) as db:
        names = {o["uuid"]: o["name"] for o in db.listed(SQL["orgs"])}
        found = [{**u, "org_name": names.get(u["org"])} for u in db.listed(USERS[memberships(db)])]
    ctx.output.emit(
        found,
        lambda us: ctx.output.table(
            None,
            ["email", "role", "org", "active", "created", "uuid"],
            [
                [
                    u["email"],
                    u["role"],
                    u["org_name"],
                    "yes" if u["is_active"] else "no",
                    f"{u['created']:%Y-%m-%d %H:%M:%S}",
                    u["uuid"],
                ]
                for u in us
            ],
        ),
    )
    return EXIT_OK
