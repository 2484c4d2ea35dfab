"""The releases of this schema, in order: the one table every part of the program reads.

Each release names the last migration of its schema and the release ``config.schema_release()``
reports at that schema. 6.2 and 6.3 bring nothing to this slice (6.2 adds v2 URLs, 6.3 storage
and credential memberships, neither modelled here), so they *are* the 6.1 schema: migrating
``--to 6.3`` leaves a database that reports 6.1. The database stays the truth about where it
stands; this table only says what each release means.

What the service does differently per release is a property here (``customers``,
``customers_final``), never a comparison with a release name elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    name: str
    migration: str  # the last migration of its schema (migrations/<id>.sql); 6.4 spans 0003 to 0005
    schema: str  # what config.schema_release() reports at that schema
    summary: str
    customers: bool = False  # customers exist (the parallel hierarchy)
    customers_final: bool = False  # every project keeps its customer: no orphans, no job
    memberships: bool = False  # users belong to orgs through config.org_memberships

    @property
    def job_runs(self) -> bool:
        """Whether the background job has work to do (and is scheduled)."""
        return self.customers and not self.customers_final


TABLE: tuple[Release, ...] = (
    Release("6.0", "0001.baseline", "6.0", "orgs and projects, before customers"),
    Release("6.1", "0002.customers", "6.1", "customers, the parallel hierarchy", customers=True),
    Release(
        "6.2", "0002.customers", "6.1", "the 6.1 schema (6.2 adds v2 URLs, not modelled)", customers=True
    ),
    Release(
        "6.3",
        "0002.customers",
        "6.1",
        "the 6.1 schema (6.3 adds storage and credential memberships, not modelled)",
        customers=True,
    ),
    Release(
        "6.4",
        "0005.org-promotion",
        "6.4",
        "customers required, associations final, org memberships, the promotion to orgs",
        customers=True,
        customers_final=True,
        memberships=True,
    ),
)
BY_NAME: dict[str, Release] = {r.name: r for r in TABLE}
NAMES: tuple[str, ...] = tuple(BY_NAME)
FIRST: str = TABLE[0].name
LATEST: str = TABLE[-1].name
FIRST_WITH_CUSTOMERS: str = next(r.name for r in TABLE if r.customers)
FIRST_FINAL: str = next(r.name for r in TABLE if r.customers_final)


def get(name: str | None) -> Release | None:
    """The release called ``name`` (None for None or an unknown name)."""
    return BY_NAME.get(name) if name is not None else None


def sharing_schema(schema: str) -> list[str]:
    """The releases whose schema reports ``schema`` (6.1: 6.1, 6.2, 6.3)."""
    return [r.name for r in TABLE if r.schema == schema]
