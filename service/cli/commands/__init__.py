"""The commands, one module per command or group, in the order ``hierarchy --help`` lists them.

Each module has ``add_to(sub)`` (its arguments) and one function per command taking
``(ctx: Context, args)`` and returning an exit code; SQL only as named statements run through
``ctx.database(...)`` (:class:`service.queries.SyncDb`).
"""

from service.cli.commands import audit, migrate, orgs, reconcile, run, status, switch_mode, tunable, user

GROUPS = (run, migrate, status, reconcile, tunable, audit, switch_mode, orgs, user)
