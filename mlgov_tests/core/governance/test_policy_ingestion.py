"""The policy's ``ingestion`` section: defaults for existing policy files, impossible caps refused."""

from __future__ import annotations

import re

import pytest

from mlgov_assets.core.governance.policy import Ingestion, PolicyError, parse_policy
from mlgov_tests.core.governance.test_policy import GOOD


def test_existing_policies_get_the_default_caps():
    policy = parse_policy(GOOD)
    assert policy.ingestion == Ingestion()
    assert policy.ingestion.max_file_bytes == 256 * 1024 * 1024 and policy.ingestion.quote_chars == 40


def test_caps_are_read_from_the_policy():
    policy = parse_policy(GOOD + "ingestion: {max_file_bytes: 1000, max_field_chars: 50, quote_chars: 16}\n")
    assert (policy.ingestion.max_file_bytes, policy.ingestion.max_field_chars, policy.ingestion.quote_chars) == (
        1000,
        50,
        16,
    )


@pytest.mark.parametrize(
    "extra, key",
    [
        ("ingestion: {max_file_bytes: 0}\n", "ingestion.max_file_bytes"),
        ("ingestion: {max_line_chars: 3}\n", "ingestion.max_line_chars"),
        ("ingestion: {quote_chars: 100000}\n", "ingestion.quote_chars"),
        ("ingestion: {max_report_bytes: 10}\n", "ingestion.max_report_bytes"),
        ("ingestion: {max_cells: 10}\n", "unknown key(s) ['max_cells']"),
    ],
)
def test_impossible_caps_are_refused_on_load(extra, key):
    with pytest.raises(PolicyError, match=re.escape(key)):
        parse_policy(GOOD + extra)
