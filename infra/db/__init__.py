"""PostgreSQL access: engines, the three roles, migrations."""
