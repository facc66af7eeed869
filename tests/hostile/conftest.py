"""One OAuth `mcpkit dev` (vault server, 3 instances) behind the fault proxy, per test worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.hostile.support import OAuthDev, open_oauth_dev

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def oauth_dev() -> Iterator[OAuthDev]:
    yield from open_oauth_dev()
