"""The incident-triage assistant of ``examples/incident_triage.py``: the workflow
(``graph``), its plan bound (``plan``), the diagnosis validator (``diagnosis``), the sandboxed
tools (``tools``), the fake host (``world``), the models, and the session that drives a run."""
