"""The answer side: retrieval, evidence, prompts, grounding, the LangChain chain, the QA service."""
