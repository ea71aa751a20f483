"""The pages of the web app and who may see them: the navigation is this list, filtered by role.

Adding a page is one entry in :data:`PAGES` (its title, its path under ``/app``, the permission
of :mod:`patron.governance.security` it needs) beside its route; the navigation shows a user only
the entries their role holds the permission of, and the route refuses the others with 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from patron.governance.security import Permission, Principal

#: Where the web app lives.
PREFIX = "/app"


@dataclass(frozen=True)
class Page:
    """One page of the navigation."""

    name: str  # the short id templates mark the current page with
    title: str
    path: str
    permission: Permission


#: The pages, in navigation order. The dashboard (``Permission.VIEW_INSIGHTS``), profiler
#: (``VIEW_INSIGHTS``) and models (``VIEW_MODELS``) pages join here when they are built.
PAGES: tuple[Page, ...] = (
    Page("customers", "Customers", f"{PREFIX}/customers", Permission.READ_CUSTOMER),
    Page("audiences", "Audiences", f"{PREFIX}/audiences", Permission.READ_AUDIENCES),
)


def page(name: str) -> Page:
    """The page called ``name`` (KeyError for none)."""
    return next(p for p in PAGES if p.name == name)


def visible_pages(principal: Principal) -> list[Page]:
    """The pages ``principal``'s role may open, in navigation order."""
    return [p for p in PAGES if principal.can(p.permission)]


def home_path(principal: Principal) -> str | None:
    """Where a user lands after login: the first page their role may open (None when it may open none)."""
    pages = visible_pages(principal)
    return pages[0].path if pages else None
