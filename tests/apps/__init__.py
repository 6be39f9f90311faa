"""Small importable apps the end-to-end tests serve with ``python -m esg`` in a subprocess."""
