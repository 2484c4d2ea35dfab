"""``hierarchy run``: migrate to the newest release, ensure the admin user, serve the API."""

from __future__ import annotations

import contextlib
import os

from service import migrations
from service.cli.commands.migrate import migrate_with_progress
from service.cli.context import Context
from service.cli.errors import EXIT_OK, CliError
from service.cli.parser import command, port


def add_to(sub) -> None:
    p = command(
        sub,
        "run",
        serve,
        "migrate to the newest release, ensure the admin user, serve the API",
        "hierarchy run --host 0.0.0.0 --port 8080",
    )
    p.add_argument("--host", help="listen address (default HIERARCHY_HOST or 127.0.0.1)")
    p.add_argument("--port", type=port, help="listen port (default HIERARCHY_PORT or 8080)")
    p.add_argument(
        "--to",
        metavar="RELEASE",
        help=f"upgrade to this release first (default {migrations.LATEST}; never downgrades)",
    )


def serve(ctx: Context, args) -> int:
    import uvicorn

    from service import users

    settings = ctx.settings
    url = ctx.url()
    target = migrations.check_release(args.to)
    if any(direction == "rollback" for direction, _ in migrations.plan(url, target)):
        raise CliError(
            f"the database is at release {migrations.current_release(url)}, past {target}: "
            f"`hierarchy run` never downgrades; run `hierarchy migrate --to {target}` first"
        )
    steps = migrate_with_progress(ctx, url, target)
    email, password = users.ensure_admin(url, settings.admin_email, settings.admin_password)
    host, listen_port = args.host or settings.host, args.port or settings.port
    info = {
        "release": migrations.current_release(url),
        "migration_steps": len(steps),
        "url": f"http://{host}:{listen_port}",
        "admin_email": email if password else None,
        "admin_password": password,
    }
    ctx.output.emit(info, lambda i: _print(ctx, i), indent=None)  # one line: the server's lifetime follows
    ctx.output.out.flush()
    # The app reads its database from here (see service.app); same process, no reload. It
    # connects as the runtime role (ctx.runtime_url), never as the owner that migrated.
    os.environ["HIERARCHY_DATABASE_URL"] = ctx.runtime_url()
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run("service.app:create_app", factory=True, host=host, port=listen_port, log_level="info")
    return EXIT_OK


def _print(ctx: Context, info: dict) -> None:
    ctx.output.print(f"database at release {info['release']}; serving on {info['url']}")
    if info["admin_password"]:
        ctx.output.print(
            f"created administrator {info['admin_email']} with password {info['admin_password']} "
            "(shown once: store it now)"
        )
