"""The ``tether`` command: inspect, resume, fork and cancel runs in a store.

``tether.cli.main`` parses and dispatches, ``tether.cli.commands`` holds the async actions (they
drive a :class:`tether.graph.Runtime`), ``tether.cli.render`` prints tables, colour and JSON.
"""
