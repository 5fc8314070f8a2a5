"""The index side: PDFs read, chunked and embedded into a verified index on disk; ingest."""
