"""Data: tasks (loading and labels), seeded splits, calibration sets and self-generated calibration text."""
