"""Is Ollama up, and is the model pulled? One quick check for the UI sidebar and `rag ask`."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from ollama import Client, ResponseError

from rag.chain.errors import model_missing_message, offline_message


@dataclass(frozen=True)
class OllamaStatus:
    """What :func:`check_ollama` found; ``message`` says what to start or pull (or that all is well)."""

    base_url: str
    model: str
    reachable: bool
    model_present: bool
    models: tuple[str, ...]
    version: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.reachable and self.model_present


def canonical_model(name: str) -> str:
    """Ollama's name normalisation: a name without a tag means ``:latest``."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def check_ollama(base_url: str, model: str, timeout: float = 3.0) -> OllamaStatus:
    """Ask the Ollama server at ``base_url`` for its version and pulled models (``/api/tags``); never raises."""
    client = Client(host=base_url, timeout=timeout)
    try:
        listed = client.list()
    except (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout):
        return OllamaStatus(base_url, model, False, False, (), None, offline_message(base_url))
    except httpx.TimeoutException:
        return OllamaStatus(base_url, model, False, False, (), None,
                            f"Ollama at {base_url} did not answer within {timeout:g} s: it may be starting or "
                            "overloaded. Wait and retry, or check `ollama serve`.")
    except (ResponseError, httpx.HTTPError, ValueError) as exc:
        return OllamaStatus(base_url, model, False, False, (), None,
                            f"Something answers at {base_url}, but not as Ollama does ({exc}). "
                            "Check llm.base_url: Ollama listens on port 11434 by default.")
    finally:
        client.close()
    models = tuple(m.model for m in listed.models if m.model)
    version = _version(base_url, timeout)
    present = canonical_model(model) in {canonical_model(m) for m in models}
    if present:
        message = f"Ollama{' ' + version if version else ''} at {base_url} is running with `{model}`."
    else:
        available = ", ".join(models) if models else "none"
        message = f"{model_missing_message(model, base_url)} Pulled models: {available}."
    return OllamaStatus(base_url, model, True, present, models, version, message)


def _version(base_url: str, timeout: float) -> str | None:
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/api/version", timeout=timeout)
        response.raise_for_status()
        version = response.json().get("version")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return str(version) if version else None
