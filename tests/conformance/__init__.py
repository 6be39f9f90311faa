"""The parser's conformance corpus (``cases``) and request generators (``mutations``).

A package so that every test, and the fuzzing harness, imports the one corpus as
``from conformance import cases`` (``tests/`` is on ``sys.path``: pytest puts it there for
``tests/conftest.py``, and tests/fuzz/fuzz_parser.py when run on its own).
"""
