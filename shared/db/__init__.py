"""Database layer: declarative base, models, sessions. All SQL lives in repository modules."""
