"""Jobs: questions and ingests as units of work, tracked and run alike inline or by workers."""
