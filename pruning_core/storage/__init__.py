"""Storage: the SQLite results store, joined result tables, the dashboard's data roots and uploads."""
