"""UTC datetimes in the ledger: SQLite's text form is SQLAlchemy's own."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from integration.ledger.db import UTCDateTime

SQLITE = sqlite.dialect()
OURS = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
SQLALCHEMY = DateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
zones = st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-9, minutes=-30))])


@given(moment=st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones))
def test_sqlite_text_is_what_sqlalchemy_writes_for_the_same_utc_moment(moment):
    assert OURS(moment) == SQLALCHEMY(moment.astimezone(UTC).replace(tzinfo=None))


def test_none_stays_none_and_naive_is_refused():
    assert OURS(None) is None
    with pytest.raises(ValueError, match="naive"):
        OURS(datetime(2026, 11, 27, 9, 30))
