"""Ingest: read fragmented hospital exports, normalise them and code free-text diagnoses.

Sub-packages: ``coding`` turns diagnosis text into codes from a code set the hospital supplies.
"""
