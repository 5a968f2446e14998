"""In-store redemptions of offer codes: one at a time (CLI) or a till's CSV export.

Both go through :mod:`publisher.shop` like the till and the API: a sale is keyed by its store
and receipt number, and the offer's rules apply. A till export is imported row by row: a bad or
refused row is reported with its line number and skipped, good rows are imported, and importing
the same file again adds nothing. A row without a receipt number is keyed by a hash of the
whole row (so identical rows count once), and the import says how many there were.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from publisher.errors import StoryloopError
from publisher.settings import Settings
from publisher.shop import paths
from publisher.shop.context import Shop
from publisher.shop.redeem import Status
from publisher.tracking import conversions

CSV_COLUMNS = ("date", "code", "order_id", "value", "currency", "store")
REQUIRED_COLUMNS = ("code", "value")


@dataclass
class ImportResult:
    imported: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    without_receipt: list[int] = field(default_factory=list)  # line numbers


def row_key(row: tuple[str, ...]) -> str:
    """The key of a CSV row without a receipt number: a hash of the whole row."""
    return "row:" + hashlib.sha256("\x1f".join(row).encode()).hexdigest()[:40]


def redeem(
    engine: Engine,
    settings: Settings,
    *,
    code: str,
    value: str,
    store: str | None,
    currency: str | None = None,
    order_id: str | None = None,
) -> bool:
    payload = {"code": code, "value": value, "store": store, "currency": currency}
    payload["order_id"] = order_id
    with engine.begin() as conn:
        outcome = paths.record(
            conn,
            Shop.from_settings(settings),
            payload,
            conversions.stores(settings),
            conversions.default_currency(settings),
            source="cli",
            account="cli",
        )
    return outcome.status is Status.RECORDED


def import_sales(engine: Engine, settings: Settings, path: Path) -> ImportResult:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise StoryloopError(f"{path}: cannot be read: {exc.strerror}") from exc
    result = ImportResult()
    shop = Shop.from_settings(settings)
    with handle, engine.begin() as conn:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise StoryloopError(
                f"{path}:1: header: missing column(s) {', '.join(missing)} "
                f"(expected {','.join(CSV_COLUMNS)})"
            )
        reader.fieldnames = header
        for row in reader:
            line = reader.line_num
            values = {k: (v or "").strip() for k, v in row.items() if k in CSV_COLUMNS}
            try:
                outcome = paths.record(
                    conn,
                    shop,
                    values,
                    conversions.stores(settings),
                    conversions.default_currency(settings),
                    source="csv",
                    account="csv",
                    row_key=row_key(tuple(values.get(c, "") for c in CSV_COLUMNS)),
                )
            except conversions.InvalidConversion as exc:
                result.errors.append(f"{path}:{line}: {exc}")
                continue
            if not values.get("order_id"):
                result.without_receipt.append(line)
            if outcome.status is Status.RECORDED:
                result.imported += 1
            else:
                result.duplicates += 1
    return result
