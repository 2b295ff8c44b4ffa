"""One engine, so one connection pool, per database in a process, however it is asked for: a
step's read (``get_engine()``) and its record (``unit_of_work()``) once held a pool each."""

from __future__ import annotations

import pytest

from shared.db.session import get_engine, session_factory, unit_of_work
from shared.jobs import repository as repo
from shared.settings import get_common_settings

pytestmark = pytest.mark.usefixtures("database_url")


def test_the_default_database_has_one_engine_however_it_is_named() -> None:
    configured = get_common_settings().database_url
    assert get_engine() is get_engine(None) is get_engine(configured)
    assert session_factory().kw["bind"] is get_engine()
    assert session_factory(configured) is session_factory(None)


def test_a_read_outside_a_transaction_and_a_unit_of_work_share_one_pool() -> None:
    with repo.outside_transaction() as session:
        read = session.connection().engine
    with unit_of_work() as session:
        record = session.connection().engine
    assert read is record is get_engine()
