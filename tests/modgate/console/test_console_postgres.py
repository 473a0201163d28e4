"""The console's queue, leases and decisions on PostgreSQL (the chart's backend): the flow and
API tests of test_console_flow.py and test_console_api.py, run again over a database of their
own on the session's server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modgate.tools.pgserver import TemporaryPostgres
from tests.modgate.console.test_console_api import (  # noqa: F401  (collected again here)
    test_admin_exports_labels_as_jsonl_and_csv,
    test_api_queue_item_claim_decide_and_labels,
)
from tests.modgate.console.test_console_flow import (  # noqa: F401  (collected again here)
    test_an_expired_lease_may_be_taken_over_and_a_holder_may_release,
    test_claim_lease_refuses_a_second_reviewer_and_decide_writes_label_and_audit,
    test_queue_is_review_only_riskiest_then_oldest_and_filters_by_post,
)
from tests.store_fixtures import fresh_postgres_database


@pytest.fixture
def store_path(postgres_server: TemporaryPostgres) -> Iterator[str]:
    with fresh_postgres_database(postgres_server) as url:
        yield url
