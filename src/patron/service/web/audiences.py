"""``/app/audiences``: each defined audience's size per market, those left out for lack of consent, its files.

The audiences and their members are :mod:`patron.activation.audiences`' (consent applied as
there), the files :func:`patron.activation.exports.export_audience`'s, in every format of
:data:`patron.config.EXPORT_FORMATS`, computed on the current serving version's tables as
``GET /audiences/{name}`` does and open to the same roles (``audiences:read``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from patron.activation.audiences import audience_base, list_audiences, select_audience
from patron.activation.exports import export_audience
from patron.config import EXPORT_FORMATS, AudienceDefinition, Settings
from patron.engine import Warehouse
from patron.errors import NotFound
from patron.service.web.auth import WebRoute, WebUser, page_user, state
from patron.service.web.nav import PREFIX, page
from patron.service.web.render import SECURITY_HEADERS, render

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
PAGE = page("audiences")
AudienceUser = Annotated[WebUser, Depends(page_user(PAGE.permission))]
#: What the page calls customers without a market (no preferred or home country).
NO_MARKET = "no market"
#: The formats that carry (hashed) e-mails and phones: they need them in clear in the warehouse.
CONTACT_FORMATS = ("google", "meta")


def sizes_by_market(warehouse: Warehouse, settings: Settings,
                    audiences: list[AudienceDefinition]) -> dict[str, list[dict[str, Any]]]:
    """Per audience and market: customers matched, members (with marketing consent), excluded for lack of consent;
    markets by members, largest first.

    The audiences' selections (:func:`patron.activation.audiences.select_audience` over the
    audience base of their horizon, as :func:`~patron.activation.audiences.audience_counts`
    makes them) are counted in one query.
    """
    bases: dict[int, ir.Table] = {}
    parts = []
    for audience in audiences:
        horizon = audience.horizon_months or settings.segments.horizon_months
        if horizon not in bases:
            bases[horizon] = audience_base(warehouse, settings, horizon=horizon)
        selected = select_audience(bases[horizon], audience, market=audience.market)
        parts.append(selected.select(audience=ibis.literal(audience.name), market=selected.market,
                                     consent=selected.marketing_consent.cast("int64")))
    out: dict[str, list[dict[str, Any]]] = {a.name: [] for a in audiences}
    if not parts:
        return out
    union = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
    frame = warehouse.to_pandas(union.group_by("audience", "market").aggregate(
        matched=union.count(), members=union.consent.sum()))
    for r in frame.itertuples():
        members = int(0 if pd.isna(r.members) else r.members)
        out[str(r.audience)].append({"market": NO_MARKET if pd.isna(r.market) else str(r.market),
                                     "matched": int(r.matched), "members": members,
                                     "excluded_no_consent": int(r.matched) - members})
    return {name: sorted(rows, key=lambda r: (-r["members"], r["market"])) for name, rows in out.items()}


@router.get("/audiences")
def audiences_page(request: Request, user: AudienceUser) -> Response:
    """Every audience with its sizes per market, its consent exclusions and its download links."""
    settings: Settings = request.app.state.settings
    version = state(request).version()
    audiences = list_audiences(settings)
    with version.lock:
        sizes = sizes_by_market(version.warehouse, settings, audiences)
    cards = [{"audience": a, "markets": sizes[a.name], "members": sum(m["members"] for m in sizes[a.name]),
              "excluded": sum(m["excluded_no_consent"] for m in sizes[a.name])} for a in audiences]
    chart = {"audiences": [c["audience"].name for c in cards], "members": [c["members"] for c in cards],
             "excluded": [c["excluded"] for c in cards]}
    hashed = settings.privacy.hash_personal_data
    formats = [{"name": f, "available": not (hashed and f in CONTACT_FORMATS)} for f in EXPORT_FORMATS]
    return render(request, "audiences.html", {"cards": cards, "chart": chart, "formats": formats,
                                              "hashed": hashed, "version": version.manifest},
                  principal=user.principal, csrf=user.session.csrf, current=PAGE.name)


@router.get("/audiences/{name}/export")
async def download(request: Request, user: AudienceUser, name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
                   fmt: Annotated[str, Query(alias="format", pattern="^(" + "|".join(EXPORT_FORMATS) + ")$")] = "csv",
                   ) -> Response:
    """Audience ``name`` as a file in format ``fmt``, written by the export code (consent applied there)."""
    settings: Settings = request.app.state.settings
    if name not in {a.name for a in list_audiences(settings)}:
        raise NotFound(f"There is no audience called {name!r}.")
    version = state(request).version()

    def export() -> bytes:
        with tempfile.TemporaryDirectory(prefix="patron-web-export-") as folder:
            out = FilePath(folder) / f"{name}_{fmt}.csv"
            with version.lock:
                export_audience(version.warehouse, settings, name, fmt, out)
            return out.read_bytes()

    body = await run_in_threadpool(export)
    headers = {**SECURITY_HEADERS,
               "Content-Disposition": f'attachment; filename="{name}_{fmt}_{version.manifest.version}.csv"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
