"""In-store redemptions of offer codes: one at a time (CLI) or a till's CSV export.

Both go through :mod:`publisher.shop` like the till and the API: a sale is keyed by its store
and receipt number, and the offer's rules apply. A till export is imported row by row: a bad or
refused row is reported with its line number and skipped, good rows are imported, and importing
the same file again adds nothing. A row without a receipt number is keyed by a hash of the
whole row (so identical rows count once), and the import says how many there were.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine

from publisher.errors import StoryloopError
from publisher.settings import Settings
from publisher.shop import paths
from publisher.shop.context import Shop
from publisher.shop.redeem import Status
from publisher.tracking import conversions

CSV_COLUMNS = ("date", "code", "order_id", "value", "currency", "store")
REQUIRED_COLUMNS = ("code", "value")


# Tills export in the shop's own encoding: detection chooses among these (Windows-1252 is
# Latin-1 with printable characters where Latin-1 has controls)
DETECTABLE = ("utf_8", "gb18030", "cp1252")
NAMES = {
    "utf_8": "UTF-8",
    "utf_8_sig": "UTF-8",
    "utf_16": "UTF-16",
    "utf_16_le": "UTF-16LE",
    "utf_16_be": "UTF-16BE",
    "gb18030": "GB18030 (GBK)",
    "gbk": "GBK",
    "cp1252": "Windows-1252 (Latin-1)",
    "latin_1": "Latin-1",
    "iso8859_1": "Latin-1",
}


@dataclass
class ImportResult:
    imported: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    encoding: str = "UTF-8"  # what the file was read as
    detected: bool = True  # False when given with --encoding
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


def read_export(path: Path, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the name of the encoding it was read in: ``encoding`` when given,
    else a byte-order mark, else UTF-8, UTF-16 without a mark, GB18030 or Windows-1252, as
    charset-normalizer judges the bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoryloopError(f"{path}: cannot be read: {exc.strerror}") from exc
    name = _codec(encoding) if encoding else _detect(path, data)
    try:
        text = data.decode(name)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StoryloopError(
            f"{path}:{line}: byte 0x{data[exc.start]:02x} cannot be read as {_label(name)}",
            hint="name the till's encoding with --encoding, e.g. gbk, utf-16, latin-1",
        ) from None
    return text.removeprefix("\ufeff"), _label(name)


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name.replace("-", "_")
    except LookupError:
        raise StoryloopError(
            f"--encoding {encoding!r}: no such encoding", hint="e.g. utf-8, gbk, utf-16, latin-1"
        ) from None


def _detect(path: Path, data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf_8_sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf_16"
    if data[1:200:2].count(0) > len(data[1:200:2]) // 2:
        return "utf_16_le"
    if data[0:200:2].count(0) > len(data[0:200:2]) // 2:
        return "utf_16_be"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf_8"
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=list(DETECTABLE)).best()
    if best is None:
        raise StoryloopError(
            f"{path}: cannot tell which encoding the file is in",
            hint="name it with --encoding, e.g. gbk, utf-16, latin-1",
        )
    return str(best.encoding)


def _label(codec: str) -> str:
    return NAMES.get(codec, codec.upper().replace("_", "-"))


PROGRESS_ROWS = 500  # on_progress is told after every this many rows


def import_sales(
    engine: Engine,
    settings: Settings,
    path: Path,
    encoding: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import a till export in one transaction; ``on_progress(lines_done, lines_total)`` is
    called every few hundred rows and at the end (lines, since a quoted field may span two)."""
    text, used = read_export(path, encoding)
    result = ImportResult(encoding=used, detected=encoding is None)
    with engine.begin() as conn:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            _import_rows(conn, reader, settings, path, result, on_progress, _lines(text))
        except csv.Error as exc:  # a field over csv's limit, a NUL: not a till export
            raise StoryloopError(
                f"{path}:{reader.line_num + 1}: {exc} (nothing was imported)",
                hint=f"a till export with the columns {','.join(CSV_COLUMNS)}",
            ) from None
    return result


def _lines(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def _import_rows(
    conn: Connection,
    reader: csv.DictReader[str],
    settings: Settings,
    path: Path,
    result: ImportResult,
    on_progress: Callable[[int, int], None] | None = None,
    lines: int = 0,
) -> None:
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise StoryloopError(
            f"{path}:1: header: missing column(s) {', '.join(missing)} "
            f"(expected {','.join(CSV_COLUMNS)})"
        )
    reader.fieldnames = header
    shop = Shop.from_settings(settings)
    total = max(lines, 1)
    for number, row in enumerate(reader, 1):
        line = reader.line_num
        if on_progress is not None and number % PROGRESS_ROWS == 0:
            on_progress(min(line, total), total)
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
    if on_progress is not None:
        on_progress(total, total)
