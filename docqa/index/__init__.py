"""The index side: documents read, chunked and embedded into a verified index on disk; ingest."""
