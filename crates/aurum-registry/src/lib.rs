//! Model registry, artifact store, API keys, training-job records and the hash-chained audit log, over SQLite (PostgreSQL later) and local disk (S3 later).
