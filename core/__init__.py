"""The milestone engine: storage, test-report ingestion, the gate and its metrics."""
