"""The compiled part of rseqcheck: the explicit search's visited set
(checker/engines/_visited.c).  Everything else is in pyproject.toml.  The
extension is optional: without a C compiler the install goes on and the
search keeps its states in a dict (checker/engines/visited.py says which)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "rseqcheck.checker.engines._visited",
            ["checker/engines/_visited.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
