"""The `mlops-ci` command line: argument parsing, dispatch and the top-level error handler."""
