"""The API key format: ``obk_<prefix>_<secret>``."""

from __future__ import annotations

import pytest

from server.security.api_keys import parse_prefix


def test_secret_may_contain_underscores() -> None:
    assert parse_prefix("obk_0a1b2c3d4e5f_sec_ret_with__underscores") == "0a1b2c3d4e5f"


@pytest.mark.parametrize(
    "key", ["", "obk", "obk_", "obk__secret", "obk_prefix_", "xyz_prefix_secret"]
)
def test_malformed_keys_have_no_prefix(key: str) -> None:
    assert parse_prefix(key) is None
