"""Segments: typed condition trees over the customer memory, compiled to one SQL query each."""
