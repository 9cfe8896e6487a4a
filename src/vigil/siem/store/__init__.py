"""Where events are kept: the ``EventStore`` interface and its implementations (DuckDB embedded)."""
