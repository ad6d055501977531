"""The MongoDB side of search: the aggregation that answers a :class:`~chatio.store.ngrams.Plan` from the
``grams_room`` index (every message stores its ``grams``; chatio/store/ngrams.py says which)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from pymongo import ASCENDING, IndexModel

from chatio.store.mongo_base import Document
from chatio.store.ngrams import Plan

GRAMS_INDEX: Final = IndexModel([("grams", ASCENDING), ("room", ASCENDING)], name="grams_room")
#: What reads other than search leave out: the grams are for the index, never for a client.
WITHOUT_GRAMS: Final = {"grams": 0}


def search_pipeline(plan: Plan, rooms: Sequence[str] | None, *, limit: int, skip: int = 0) -> list[Document]:
    """Every gram of the query (the index scan), then the checks grams cannot make (regular expressions,
    evaluated on those candidates only), deleted messages left out; the best share first, then newest.
    ``rooms`` must already be checked to be strings."""
    condition: Document = {"grams": {"$all": plan.grams}, "deleted": {"$ne": True}}
    if rooms is not None:
        condition["room"] = {"$in": list(dict.fromkeys(rooms))}
    checks: list[Any] = [
        {"text": {"$regex": re.escape(term) if anywhere else f"(*UCP)\\b{re.escape(term)}", "$options": "i"}}
        for term, anywhere in plan.checks
    ]
    if checks:
        condition["$and"] = checks
    share = {"$divide": [len(plan.grams), {"$max": [1, {"$size": "$grams"}]}]}
    return [
        {"$match": condition},
        {"$addFields": {"_score": share}},
        {"$sort": {"_score": -1, "ts": -1, "seq": -1}},
        {"$skip": max(0, skip)},
        {"$limit": limit},
        {"$project": {"grams": 0, "_score": 0}},
    ]
