"""The HTTP API of ragscope (`rag serve`): OpenAI-compatible chat, retrieval with every score, Dify's External
Knowledge API, similarity and health. Sits on top of ``rag`` as the CLI and the web app do."""

from api.app import create_app

__all__ = ["create_app"]
