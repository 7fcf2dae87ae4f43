"""Graded runs: a program checked against a suite's test cases, a verdict per case (see grader.py)."""
