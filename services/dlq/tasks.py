"""Three tasks as the onboarding product has them, wired to the DLQ.

Each validates its input, then calls the configured LLM client: locally the
``FlakyLLMTestDouble``, whose rate limits and timeouts send runs through the
in-worker retries and on into the DLQ. The product passes its correlation id
as the ``task_id`` keyword argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from server.settings import get_settings
from services.dlq.capture import dlq_task
from services.dlq.llm import LLMClient, build_llm_client

SUPPORTED_LANGUAGES = frozenset({"en", "de", "fr", "es", "it", "nl", "pt"})

_client: LLMClient | None = None


def llm() -> LLMClient:
    """The process's LLM client, built on first use (after the fork)."""
    global _client
    if _client is None:
        _client = build_llm_client(get_settings())
    return _client


def _session_of(args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    session_id = args[0] if args else kwargs.get("conversation_id")
    return {"session_id": session_id} if session_id else {}


def _required_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value


@dlq_task(name="process_conversation_step_v2", context=_session_of)
def process_conversation_step_v2(
    conversation_id: str,
    user_input: str,
    options: dict[str, Any] | None = None,
    *,
    task_id: str = "",
) -> dict[str, Any]:
    """Answer one user turn of an onboarding conversation."""
    text = _required_text("user_input", user_input)
    system = (options or {}).get("system_prompt", "You guide a new user.")
    reply = llm().complete(text, system=str(system))
    return {"conversation_id": conversation_id, "reply": reply}


@dlq_task(name="embed_knowledge_document")
def embed_knowledge_document(
    document_id: str, text: str, *, task_id: str = ""
) -> dict[str, Any]:
    """Embed a knowledge-base document for retrieval during onboarding."""
    vector = llm().embed(_required_text("text", text))
    return {"document_id": document_id, "dimensions": len(vector)}


@dlq_task(name="translate_conversation_step", context=_session_of)
def translate_conversation_step(
    conversation_id: str, text: str, target_language: str, *, task_id: str = ""
) -> dict[str, Any]:
    """Translate one conversation turn into the user's language."""
    if target_language not in SUPPORTED_LANGUAGES:
        raise ValueError(f"unsupported target_language {target_language!r}")
    prompt = f"Translate into {target_language}:\n{_required_text('text', text)}"
    return {"conversation_id": conversation_id, "translation": llm().complete(prompt)}
