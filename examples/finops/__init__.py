"""The pieces of ``examples/finops_agent.py``: the fake cloud (``cloud``), its tools
(``tools``), the diagnostic model (``model``), the durable, governed graph (``graph``), the
simulated clock (``simclock``), the driver (``session``) and what it prints (``narrate``)."""
