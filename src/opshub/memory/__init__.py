"""Long-term memory: pgvector store, embedders, recall and write-back around crew runs."""
