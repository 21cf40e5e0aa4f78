"""Builds the fast explorer's compiled core (``protocols/_explore_core.c``); everything
else about the package is in setup.cfg.  The core is optional: without a C compiler the
install goes on and ``l4sim explore`` runs its Python search (``protocols.explore_core``
says why; the tests insist on the core when CI=true)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "protocols._explore_core",
            sources=["protocols/_explore_core.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
