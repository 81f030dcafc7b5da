"""Storage adapters: SQLAlchemy async on SQLite (embedded) or PostgreSQL, vector indexes,
migrations. Depends on ``domain`` only."""
