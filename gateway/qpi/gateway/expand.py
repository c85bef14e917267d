"""``expand=`` support: inline related user, QPU and driver records under ``"expand"``.

An expanded record is fetched with the caller's own credentials, so it obeys the target
collection's rules exactly as a direct read would: another user's account (and so their
e-mail, which is never public) is simply left out, as PocketBase does for relations the
caller may not view.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from qpi.gateway import errors, records
from qpi.gateway.context import Ctx
from qpi.gateway.filters import FilterError
from qpi.v1 import account_service_pb2, qpu_service_pb2

logger = logging.getLogger(__name__)

MAX_EXPAND_FIELDS = 8


def parse_expand(text: str | None, relations: Mapping[str, str]) -> list[str]:
    """Split ``expand`` into relation fields.

    Raises:
        FilterError: On a field that is not a relation of the collection.
    """
    names = [part.strip() for part in (text or "").split(",") if part.strip()]
    if len(names) > MAX_EXPAND_FIELDS:
        raise FilterError("too many expand fields")
    for name in names:
        if name not in relations:
            raise FilterError(f"cannot expand {name!r}")
    return list(dict.fromkeys(names))


async def _fetch(ctx: Ctx, kind: str, record_id: str) -> dict[str, Any] | None:
    try:
        if kind == "users":
            resp = await ctx.call(
                ctx.stubs.accounts.GetUser, account_service_pb2.GetUserRequest(id=record_id)
            )
            return {**records.user_record(resp.user), "collectionName": ctx.config.users_collection}
        if kind == "drivers":
            found = await ctx.call(
                ctx.stubs.qpus.GetDriver, qpu_service_pb2.GetDriverRequest(id=record_id)
            )
            return {
                **records.driver_record(found.driver),
                "collectionName": ctx.config.drivers_collection,
            }
        resp = await ctx.call(ctx.stubs.qpus.GetQpu, qpu_service_pb2.GetQpuRequest(id=record_id))
        return {**records.qpu_object(resp.qpu), "collectionName": ctx.config.qpus_collection}
    except errors.ApiError as exc:
        if exc.status >= 500:
            raise
    return None


async def expand_records(
    ctx: Ctx, items: list[dict[str, Any]], fields: list[str], relations: Mapping[str, str]
) -> None:
    """Add ``expand`` to each record in place (unviewable relations are left out).

    Args:
        ctx: Request context.
        items: Records of one page.
        fields: Relation fields to expand.
        relations: Relation field → target kind.
    """
    if not fields:
        return
    cache: dict[tuple[str, str], dict[str, Any] | None] = {}
    for item in items:
        expanded: dict[str, Any] = {}
        for name in fields:
            kind = relations[name]
            value = item.get(name)
            ids = value if isinstance(value, list) else [value]
            found = []
            for rid in ids:
                if not isinstance(rid, str) or not rid:
                    continue
                if (kind, rid) not in cache:
                    cache[(kind, rid)] = await _fetch(ctx, kind, rid)
                if cache[(kind, rid)] is not None:
                    found.append(cache[(kind, rid)])
            if found:
                expanded[name] = found if isinstance(value, list) else found[0]
        item["expand"] = expanded
