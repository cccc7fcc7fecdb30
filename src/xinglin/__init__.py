"""Xinglin (杏林): an open-source smart-hospital backend for China."""

__version__ = "0.1.0"
