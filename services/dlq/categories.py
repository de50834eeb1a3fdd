"""Which DLQ category a task failure belongs to, decided by its exception.

``CATEGORY_BY_EXCEPTION`` is the one table. Keys are exception classes or
dotted import paths, so libraries that may be absent (an LLM SDK, httpx) cost
nothing until installed. The most specific class in the exception's MRO wins.
A deployment extends the table with ``register_category`` or the
``DLQ_EXTRA_CATEGORIES`` setting (a JSON object mapping dotted class paths to
categories), which the worker and the server both load at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache

from services.dlq.llm import LLMError

LLM_API = "llm_api"
NETWORK = "network"
DATABASE = "database"
VALIDATION = "validation"
# An exception the table does not know; visible so the table gets extended.
OTHER = "other"

# The categories the spec documents; statistics always list these.
DOCUMENTED_CATEGORIES = (LLM_API, NETWORK, DATABASE, VALIDATION)

CATEGORY_BY_EXCEPTION: dict[type[BaseException] | str, str] = {
    # Provider rate limits, timeouts and API errors.
    LLMError: LLM_API,
    "openai.APIError": LLM_API,
    "anthropic.APIError": LLM_API,
    # Reaching other services.
    ConnectionError: NETWORK,
    TimeoutError: NETWORK,
    "socket.gaierror": NETWORK,
    "httpx.TransportError": NETWORK,
    "requests.exceptions.ConnectionError": NETWORK,
    "requests.exceptions.Timeout": NETWORK,
    # Storage.
    "sqlalchemy.exc.SQLAlchemyError": DATABASE,
    "psycopg.Error": DATABASE,
    "redis.exceptions.RedisError": DATABASE,
    # Input no retry can fix; these are not retried automatically.
    ValueError: VALIDATION,
    "pydantic.ValidationError": VALIDATION,
}

# Failures retrying the same input cannot fix.
NOT_RETRIED = frozenset({VALIDATION})


def register_category(exception: type[BaseException] | str, category: str) -> None:
    """Add or replace one row of the table (call before the worker starts)."""
    CATEGORY_BY_EXCEPTION[exception] = category
    _resolved_table.cache_clear()


def register_categories(extra: Mapping[str, str]) -> None:
    """Add the deployment's rows (``DLQ_EXTRA_CATEGORIES``) to the table."""
    for path, category in extra.items():
        register_category(path, category)


def known_categories() -> tuple[str, ...]:
    """Every category a failure can get, documented ones first."""
    extra = sorted(set(_resolved_table().values()) - set(DOCUMENTED_CATEGORIES))
    return (*DOCUMENTED_CATEGORIES, *extra, OTHER)


def categorize(error: BaseException) -> str:
    """The category of the most specific known class of ``error``."""
    table = _resolved_table()
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return OTHER


def is_retried(category: str) -> bool:
    return category not in NOT_RETRIED


@cache
def _resolved_table() -> dict[type, str]:
    table: dict[type, str] = {}
    for key, category in CATEGORY_BY_EXCEPTION.items():
        cls = _resolve(key) if isinstance(key, str) else key
        if cls is not None:
            table[cls] = category
    return table


def _resolve(path: str) -> type | None:
    """The class at ``module.Name``; None when its library is not installed."""
    module_name, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    cls = getattr(module, name, None)
    return cls if isinstance(cls, type) else None
