"""Placeholder (issue 18): filled by a helper session."""
