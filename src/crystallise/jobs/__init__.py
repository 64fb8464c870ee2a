"""Jobs: everything that turns a request into stored work and runs it.

Two layers live here (``tests/architecture/test_layers.py``):

- ``jobs.engine`` (below the capabilities): the runner and its items, writer, dispatchers
  (in-process, queue, child process), failure rules, the base job spec and model retirement.
  It knows job rows and items, never what a screening or an extraction is.
- ``jobs.*`` (above the capabilities): ``start`` (one start-up for every process, the kinds
  registry), ``submit`` (estimate, budget, store, dispatch), ``update``, ``resume`` (retry and
  the key policy), ``budget``, ``provenance``.
"""
