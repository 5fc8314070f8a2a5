"""The LLM side: the engine interface and generation loop, the backends, model resolution."""
