"""In-store redemptions of offer codes: one at a time (CLI, API) or a till's CSV export.

A till export is imported row by row: a bad row is reported with its line number and skipped,
good rows are imported, and importing the same file again adds nothing (each row's key is its
order id, or a hash of the row when the till gives none).
"""

from __future__ import annotations

import csv
import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from publisher.errors import StoryloopError
from publisher.settings import Settings
from publisher.tracking import conversions

CSV_COLUMNS = ("date", "code", "order_id", "value", "currency", "store")
REQUIRED_COLUMNS = ("code", "value")


@dataclass
class ImportResult:
    imported: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


def redemption_key(order_id: str | None, row: tuple[str, ...] | None = None) -> str:
    """The dedupe key: the order id, else a hash of the row, else (CLI, API) a fresh one."""
    if order_id:
        return f"redemption:{order_id}"
    if row is not None:
        return "row:" + hashlib.sha256("\x1f".join(row).encode()).hexdigest()[:40]
    return "once:" + secrets.token_hex(16)


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
    redemption = conversions.parse_redemption(
        payload, conversions.default_currency(settings), conversions.stores(settings)
    )
    with engine.begin() as conn:
        return conversions.record_redemption(
            conn, redemption, "cli", redemption_key(redemption.order_id)
        )


def import_sales(engine: Engine, settings: Settings, path: Path) -> ImportResult:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise StoryloopError(f"{path}: cannot be read: {exc.strerror}") from exc
    result = ImportResult()
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
                redemption = conversions.parse_redemption(
                    values, conversions.default_currency(settings), conversions.stores(settings)
                )
                key = redemption_key(
                    redemption.order_id, tuple(values.get(c, "") for c in CSV_COLUMNS)
                )
                fresh = conversions.record_redemption(conn, redemption, "csv", key)
            except conversions.InvalidConversion as exc:
                result.errors.append(f"{path}:{line}: {exc}")
                continue
            if fresh:
                result.imported += 1
            else:
                result.duplicates += 1
    return result
