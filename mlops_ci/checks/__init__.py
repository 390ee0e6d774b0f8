"""Data checks: column profiles, schema diffs and drift scores computed from profiles."""
