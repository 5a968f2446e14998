"""Adapter state in the engine's database: one table, on SQLite and PostgreSQL, and what it
holds for an adapter across processes; ``metrics()`` reading the receipt the ledger kept."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import responses
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine

from publisher import db
from publisher.settings import Settings
from publisher.state import DatabaseState
from publisher.tracking.metrics import refresh_metrics
from publisher.tracking.schema import metrics as metrics_table

WX = "https://api.weixin.qq.com"


def test_the_state_table_comes_and_goes_with_its_migration(db_url: str) -> None:
    engine = db.connect(db_url)
    try:
        db.upgrade(engine)
        assert "adapter_state" in inspect(engine).get_table_names()
        state = DatabaseState(engine)
        state.put("wechat/news", "progress/d-1", {"media_id": "DRAFT"})
        state.put("wechat/news", "progress/d-1", {"media_id": "DRAFT", "publish_id": "100"})
        state.put("wechat/news", "token/wx00", {"access_token": "中文 token"})
        state.put("wechat/other", "progress/d-1", True)
        assert state.get("wechat/news", "progress/d-1") == {
            "media_id": "DRAFT",
            "publish_id": "100",
        }
        assert state.get("wechat/news", "nothing") is None
        assert state.items("wechat/news") == {
            "progress/d-1": {"media_id": "DRAFT", "publish_id": "100"},
            "token/wx00": {"access_token": "中文 token"},
        }
        assert DatabaseState(engine).get("wechat/other", "progress/d-1") is True  # another process
        command.downgrade(db.alembic_config(engine), "0012_owner")  # the table goes, alone
        assert "adapter_state" not in inspect(engine).get_table_names()
        assert "deliveries" in inspect(engine).get_table_names()
        db.upgrade(engine)
        assert DatabaseState(engine).items("wechat/news") == {}
    finally:
        engine.dispose()


def sent_delivery(
    engine: Engine, delivery_id: str, channel: str, receipt: Mapping[str, object]
) -> None:
    now = datetime.now(UTC)
    row = {
        "id": delivery_id,
        "story": "kitchen",
        "channel": channel,
        "category": "stories",
        "timezone": "Asia/Shanghai",
        "content_hash": "h",
        "due_at": now,
        "state": "sent",
        "attempts": 1,
        "sent_at": now,
        "remote_id": receipt["remote_id"],
        "url": receipt["url"],
        "receipt": json.dumps(receipt),
        "created_at": now,
        "updated_at": now,
    }
    names, values = ", ".join(row), ", ".join(f":{k}" for k in row)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO deliveries ({names}) VALUES ({values})"), row)


@responses.activate
def test_metrics_reads_what_the_receipt_kept_and_the_token_from_the_database(
    ledger_db: Engine, make_site: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeChat's statistics id and days are only in the receipt: the metrics job finds the
    figures because the ledger hands ``metrics()`` the whole receipt, and asks for the token
    once, since the second job finds it in the database."""
    monkeypatch.setenv("TEST_WX_SECRET", "wx-secret-for-tests")
    wechat = {"type": "wechat", "appid": "wx00", "secret": {"env": "TEST_WX_SECRET"}}
    settings = make_site(channels={"wechat": wechat})
    day = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=3)).date().isoformat()
    receipt = {
        "remote_id": "2247483650_1",
        "url": "https://mp.weixin.qq.com/s/abc",
        "publish_id": "100000001",
        "msgid": "2247483650_1",
        "first_day": day,
        "last_day": day,
    }
    sent_delivery(ledger_db, "d-wx", "wechat", receipt)
    token = responses.post(
        f"{WX}/cgi-bin/stable_token", json={"access_token": "T", "expires_in": 7200}
    )
    row = {"stat_date": day, "read_user": 120, "share_user": 4, "like_user": 9, "comment_count": 2}
    stats = {"list": [{"msgid": "2247483650_1", "detail_list": [row]}], "is_delay": True}
    responses.post(f"{WX}/datacube/getarticletotaldetail", json=stats)
    for _ in range(2):  # two runs of the periodic job, each opening the channel anew
        assert refresh_metrics(ledger_db, settings) == (1, 0)
    assert token.call_count == 1
    with ledger_db.connect() as conn:
        kept = conn.execute(select(metrics_table)).one()
    assert (kept.delivery_id, kept.views, kept.likes, kept.reposts) == ("d-wx", 120, 9, 4)
