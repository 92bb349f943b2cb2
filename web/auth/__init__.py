"""Logging in and out of the web UI."""
