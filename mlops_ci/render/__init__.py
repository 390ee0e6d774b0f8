"""Rendering records as Markdown: escaping and format helpers (:mod:`markdown`), Mermaid charts
(:mod:`charts`) and the report's sections (:mod:`checks`). Text from a record is untrusted: it
reaches Markdown only through :func:`markdown.esc`, :func:`markdown.code` or :func:`markdown.link`,
and a chart only through :func:`charts.mermaid_text`."""
