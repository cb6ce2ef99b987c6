"""Importers: a study's or clinic's files into a cohort folder (docs/import-diary.md)."""
