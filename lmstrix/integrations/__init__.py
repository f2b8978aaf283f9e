"""Integrations with other tools, one module each, each needing its own extra.

Nothing in lmstrix imports these modules; import the one you need (for example
``lmstrix.integrations.dask``), which imports its extra at the top.
"""
