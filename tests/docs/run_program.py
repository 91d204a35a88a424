"""Runs one documentation program as ``__main__``: ``python -c "$(cat run_program.py)" FILE``.

Top-level ``await`` is allowed (as in a notebook or ``python -m asyncio``): a program that uses
it runs as one coroutine under ``asyncio.run``. The program is a real module in ``sys.modules``
with a ``__file__``, so workflows defined in it get a reference another process can load.
"""

import ast
import asyncio
import inspect
import sys
import types

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    source = f.read()
code = compile(source, path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
module = types.ModuleType("__main__")
module.__file__ = path
sys.modules["__main__"] = module
sys.argv = [path]
if code.co_flags & inspect.CO_COROUTINE:
    asyncio.run(eval(code, module.__dict__))
else:
    exec(code, module.__dict__)
