"""Analysts: the prompt, the strict reply parser and the OpenAI-compatible client."""
