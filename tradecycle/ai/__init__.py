"""Analysts: the offline rules analyst and the OpenAI-compatible LLM analyst."""
