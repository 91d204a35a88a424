"""Attacks on the audit hook itself, from pure Python, on every available backend.

Each program first tries to switch the hook off (by reaching its state through frames, by
patching the globals and modules it might consult, by loading a forbidden extension module
under another name...), then probes what the hook alone guards and prints one word per probe.
The kernel layers may refuse some of the same things; the probes are chosen so that only the
hook's own refusal (message "sandbox: ...") counts as blocked.
"""

from __future__ import annotations

import textwrap

import pytest

from tether.tools.sandbox import Sandbox

from .conftest import FAST

# What only the hook refuses, whatever the kernel layers do: importing ctypes and creating an
# AF_INET socket (allowed by an empty network namespace), and a write outside scratch (the
# kernel refuses it too, but with EROFS/EACCES, not with the hook's "sandbox:" message).
PROBES = """
def probe():
    import importlib, os, socket
    words = []
    for label, attempt in (
        ("ctypes", lambda: importlib.import_module("ctypes")),
        ("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()),
        ("write", lambda: open("/etc/tether-escape-probe", "w").close()),
    ):
        try:
            attempt()
            words.append(label.upper() + "-ALLOWED")
        except Exception as exc:  # only the hook's own refusal counts
            words.append(label + ("-blocked" if "sandbox:" in str(exc) else "-" + type(exc).__name__))
    os.write(1, " ".join(words).encode() + b"\\n")
"""

EXPECTED = "ctypes-blocked socket-blocked write-blocked"


async def _run(code: str, backend: str) -> str:
    result = await Sandbox(FAST, backend=backend).run(PROBES + code + "\nprobe()\n")  # type: ignore[arg-type]
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


async def test_probes_blocked_without_attack(sandbox_backend: str) -> None:
    assert await _run("", sandbox_backend) == EXPECTED


# Bypass (a): walk a traceback into the hook's frames and corrupt everything mutable there.
FRAME_ATTACK = """
import builtins, types

def denied_traceback():
    try:
        open("/etc/tether-escape-probe", "w")
    except OSError as exc:
        return exc.__traceback__
    try:
        __import__("ctypes")
    except ImportError as exc:
        return exc.__traceback__

def corrupt(value, depth=0):
    if depth > 3:
        return
    if isinstance(value, (dict, set, list, bytearray)):
        for item in list(value.values() if isinstance(value, dict) else value):
            corrupt(item, depth + 1)
        value.clear()
    elif isinstance(value, types.FunctionType):
        for cell in value.__closure__ or ():
            try:
                inner = cell.cell_contents
            except ValueError:
                continue
            corrupt(inner, depth + 1)
            if isinstance(inner, str):
                cell.cell_contents = "/"
            elif isinstance(inner, (frozenset, tuple)):
                cell.cell_contents = type(inner)()
            elif callable(inner) and not isinstance(inner, type):
                cell.cell_contents = lambda *a, **k: None
        try:
            value.__code__ = (lambda *a, **k: None).__code__
        except Exception:
            pass

for tb in (denied_traceback(), denied_traceback()):
    frame = tb.tb_frame if tb else None
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    for frame in frames:
        g = frame.f_globals
        if g is not globals():  # the sandbox's frames, not this program's
            for name, value in list(frame.f_locals.items()):
                corrupt(value)
            for name in list(g):
                if name.startswith("_BLOCKED") or name in ("_WRITE_FLAGS",):
                    g[name] = type(g[name])()
        try:
            frame.clear()
        except RuntimeError:
            pass
"""


async def test_hook_state_unreachable_through_frames(sandbox_backend: str) -> None:
    assert await _run(FRAME_ATTACK, sandbox_backend) == EXPECTED


# Variation: patch what a Python-level hook would consult at call time.
MONKEYPATCH_ATTACK = """
import builtins, importlib, os, posixpath, pathlib, socket, sys
scratch = os.getcwd()
posixpath.realpath = os.path.realpath = lambda p, *a, **k: scratch + "/fine"
posixpath.abspath = lambda p: scratch + "/fine"
os.fsdecode = lambda p: scratch + "/fine"
_real = (builtins.isinstance, builtins.any, builtins.type)

def _from_launcher():
    return "_BLOCKED_EVENTS" in sys._getframe(2).f_globals

# Lie to the sandbox's own code only, so the rest of the stdlib keeps working.
builtins.isinstance = lambda obj, kind: False if _from_launcher() else _real[0](obj, kind)
builtins.any = lambda it: False if _from_launcher() else _real[1](it)
"""


async def test_hook_ignores_patched_builtins_and_modules(sandbox_backend: str) -> None:
    assert await _run(MONKEYPATCH_ATTACK, sandbox_backend) == EXPECTED


async def test_pathlib_writes_in_scratch_still_work(sandbox_backend: str) -> None:
    code = """
import pathlib
pathlib.Path("sub").mkdir()
pathlib.Path("sub/a.txt").write_text("A")
pathlib.PurePosixPath("b.txt")
with open(pathlib.Path("b.txt"), "wb") as fh:
    fh.write(b"B")
print(pathlib.Path("sub/a.txt").read_text(), pathlib.Path("b.txt").read_bytes())
"""
    result = await Sandbox(FAST, backend=sandbox_backend).run(code)  # type: ignore[arg-type]
    assert result.ok, result.stderr
    assert result.stdout == "A b'B'\n"


# Bypass (b): load _ctypes through the extension loader under a name nobody blocks.
EXTENSION_LOADER_ATTACK = """
import glob, importlib.machinery, importlib.util, os, shutil, sys

def load(name, path):
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module

def attempt(label, fn):
    try:
        fn()
        print(label, "LOADED")
    except ImportError as exc:
        print(label, "blocked" if "sandbox" in str(exc) else "failed: " + str(exc))
    except OSError as exc:
        print(label, "blocked" if "sandbox" in str(exc) else "failed: " + str(exc))

so = next(p for d in sys.path if os.path.isdir(d)
          for p in glob.glob(os.path.join(d, "_ctypes.*.so")))
attempt("renamed", lambda: load("innocent._ctypes", so))
attempt("plain-name", lambda: load("innocent", so))
def copied():
    shutil.copy(so, "copy.so")
    load("copy._ctypes", os.path.abspath("copy.so"))
attempt("copied", copied)
def symlinked():
    os.symlink(so, "link.cpython-311-x86_64-linux-gnu.so")
    load("link._ctypes", os.path.abspath("link.cpython-311-x86_64-linux-gnu.so"))
attempt("symlinked", symlinked)
def create_dynamic():
    import _imp, types
    _imp.create_dynamic(types.SimpleNamespace(name="x._ctypes", origin=so))
attempt("create_dynamic", create_dynamic)
def testcapi():
    t = next(p for d in sys.path if os.path.isdir(d)
             for p in glob.glob(os.path.join(d, "_testcapi.*.so")))
    load("y._testcapi", t)
attempt("testcapi", testcapi)
import _socket, math  # allowed extension modules still load
print("allowed ok", _socket.AF_INET, math.pi > 3)
"""


async def test_extension_loader_cannot_load_forbidden_modules(sandbox_backend: str) -> None:
    result = await Sandbox(FAST, backend=sandbox_backend).run(EXTENSION_LOADER_ATTACK)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        "renamed blocked",
        "plain-name blocked",
        "copied blocked",
        "symlinked blocked",
        "create_dynamic blocked",
        "testcapi blocked",
    ], result.stdout
    assert lines[6] == "allowed ok 2 True"


@pytest.mark.parametrize(
    "snippet",
    [
        "import sys; sys._current_frames()",
        "import gc; gc.get_referrers(print)",
        "import gc; gc.get_objects()",
    ],
)
async def test_frame_and_object_enumeration_blocked(snippet: str, sandbox_backend: str) -> None:
    result = await Sandbox(FAST, backend=sandbox_backend).run(snippet)  # type: ignore[arg-type]
    assert result.exit_code == 1
    assert "sandbox:" in result.stderr, result.stderr


async def test_ordinary_introspection_still_works(sandbox_backend: str) -> None:
    """namedtuple, typing, logging and traceback printing use frames; they must keep working."""
    code = """
import collections, logging, sys, traceback, typing, enum, dataclasses
P = collections.namedtuple("P", "x y")
T = typing.TypeVar("T")
E = enum.Enum("E", "A B")
@dataclasses.dataclass
class D:
    x: int
logging.basicConfig(stream=sys.stdout, format="%(funcName)s %(message)s")
logging.warning("logged")
try:
    1 / 0
except ZeroDivisionError:
    traceback.print_exc(file=sys.stdout)
print(P(1, 2), D(3), E.A)
"""
    result = await Sandbox(FAST, backend=sandbox_backend).run(code)  # type: ignore[arg-type]
    assert result.ok, result.stderr
    assert "<module> logged" in result.stdout
    assert "ZeroDivisionError" in result.stdout
    assert "P(x=1, y=2) D(x=3) E.A" in result.stdout


@pytest.mark.parametrize(
    "attempt",
    [
        "open('/proc/self/mem', 'r+b')",  # rewrite the interpreter's own memory
        "open('/proc/%d/mem' % __import__('os').getpid(), 'wb')",
        "__import__('os').symlink('/etc', 'up'); open('up/tether-probe', 'w')",
        "__import__('os').symlink('/etc/tether-probe', 'l'); open('l', 'w')",
        "open(__import__('os').getcwd() + '/../../../etc/tether-probe', 'w')",
        "fd = open('/etc/hostname'); open('/proc/self/fd/%d' % fd.fileno(), 'w')",
        "open(b'/etc/tether-probe', 'ab')",
        "__import__('os').rename('/etc/hostname', 'stolen')",
        "__import__('os').mkdir('/etc/tether-probe')",
        "class P(str): pass\nopen(P('ok.txt'), 'w')",  # no code of the caller's in the hook
    ],
    ids=[
        "proc-self-mem",
        "proc-pid-mem",
        "dir-symlink",
        "file-symlink",
        "dotdot",
        "proc-fd-link",
        "bytes-path",
        "rename-from-outside",
        "mkdir",
        "str-subclass",
    ],
)
async def test_hook_resolves_every_write_path(attempt: str, sandbox_backend: str) -> None:
    code = f"""
try:
{textwrap.indent(attempt, "    ")}
    print("WROTE")
except OSError as exc:
    print("blocked" if "sandbox:" in str(exc) else "other " + repr(exc))
"""
    result = await Sandbox(FAST, backend=sandbox_backend).run(code)  # type: ignore[arg-type]
    assert result.stdout.strip() == "blocked", result.stdout + result.stderr
