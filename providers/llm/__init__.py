"""LLM chat model adapters behind ``domain.llm.ChatModel``."""
