"""The stages of the flow: plain functions from typed inputs to typed records.

Stages never print, post or push on their own; progress goes to the Progress they are given
and side effects go through a backend.
"""
