"""Machine code from generated source: numba compiles it, a shared library on disk keeps it.

Generated code (a fused loop of steps, an elementwise chain) is a Python function of int64
and float64 arguments written for numba's nopython mode: :func:`pointer` turns an address
into an array of floats, :func:`now` reads the clock of ``time.perf_counter``, the C
library's functions are bound as ``math.exp`` and the like (numba calls the same libm, so
the bits are those of Python's floats), and error_model="numpy" gives IEEE inf and nan
where Python would raise.

:func:`load` compiles such a function once per source and keeps the machine code as a
shared library in a cache directory (``OPTLAB_JIT_CACHE``, default
``~/.cache/optlab/jit``), named by a digest of the source, the values it binds, the numba and
llvmlite versions and the CPU. A later process, or a sweep's other jobs, opens that library
with ctypes: no numba import, no compilation. A lock file per library makes concurrent
processes compile it once. Linking needs a C compiler driver (``cc``); without one the
machine code stays in the process (numba's own, compiled in every process).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .record import NotCompilable

MODES = ("auto", "on", "off")
#: ``auto`` compiles what is not cached when it is expected to save more than this many
#: seconds: about what importing numba and compiling a loop take.
COMPILE_SECONDS = 3.0
BUILD = "optlab-native-1"  # part of every digest: changing the wrapper or the helpers renews the cache
ENTRY = "optlab_entry"  # the C symbol of every library
_TYPES = {"i": ("int64", "i64", "c_int64"), "f": ("float64", "double", "c_double")}  # numba, LLVM, ctypes
_LOADED: dict[str, Callable] = {}  # digest -> function, in this process
#: What this process compiled: (function name, seconds), in order (a cached library is not listed).
COMPILED: list[tuple[str, float]] = []


@functools.cache
def installed() -> str | None:
    """None when numba can compile here, else why not (it is an optional extra)."""
    try:
        import importlib.util

        if importlib.util.find_spec("numba") is None:
            return "numba is not installed (pip install 'optlab[jit]')"
    except (ImportError, ValueError):
        return "numba is not installed (pip install 'optlab[jit]')"
    if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)":
        return "time.perf_counter does not read clock_gettime(CLOCK_MONOTONIC) on this system"
    return None


def setting() -> str:
    """Whether machine code is used: ``OPTLAB_JIT`` = ``auto`` (default: where numba is installed
    and it pays), ``on`` (always; an error without numba) or ``off`` (never)."""
    raw = os.environ.get("OPTLAB_JIT", "auto")
    value = raw.strip().lower() or "auto"
    value = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}.get(value, value)
    if value not in MODES:
        from ..errors import ConfigError

        raise ConfigError(f"OPTLAB_JIT={raw!r} is not a lowering setting; allowed: {', '.join(MODES)}")
    return value


def is_cached(source: str, env: dict[str, Any], args: str, key: str | None = None) -> bool:
    """Whether a function needs no compiling: loaded in this process, or its library on disk
    (``key``: its :func:`digest`, when known)."""
    key = key or digest(source, env, args)
    return key in _LOADED or (cache_dir() / f"{key}.so").exists()


def cache_dir() -> Path:
    """Where compiled libraries are kept: ``OPTLAB_JIT_CACHE``, else ``$XDG_CACHE_HOME/optlab/jit``."""
    explicit = os.environ.get("OPTLAB_JIT_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "optlab" / "jit"


def linker() -> str | None:
    """The C compiler driver that links object code into a shared library, if any."""
    import shutil

    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")


def _binding(name: str, value: Any) -> str:
    """What ``value`` bound as ``name`` contributes to the digest; raises for what machine code cannot hold."""
    if isinstance(value, float):
        return f"{name}={value.hex()}"
    if value is np:
        return f"{name}=numpy"
    if isinstance(value, types.BuiltinFunctionType) and getattr(math, value.__name__, None) is value:
        return f"{name}=math.{value.__name__}"
    if value is pointer or value is now or value is int_pointer:
        return f"{name}=native.{value.__name__}"
    if isinstance(value, types.FunctionType):  # a plain function (a stopping rule): by its code and its callees'
        return f"{name}=python:{value.__module__}.{value.__qualname__}:" + "".join(
            hashlib.sha256(repr((fn.__code__.co_code, fn.__code__.co_consts, fn.__code__.co_names)).encode())
            .hexdigest()[:16] for fn in _callees(value))
    raise NotCompilable(f"generated code binds {name} = {value!r}, which has no machine-code form")


def digest(source: str, env: dict[str, Any], args: str) -> str:
    """The cache key of a function: its source, what it binds, its argument kinds, the compiler and the CPU."""
    used = sorted(_names(compile(source, "<digest>", "exec")) & env.keys())
    parts = [BUILD, source, args, *(_binding(n, env[n]) for n in used), _platform()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]


@functools.cache
def _platform() -> str:
    """The compiler's versions and the CPU, read without importing them (the packages'
    dist-info folders, /proc/cpuinfo): a cached library opens in milliseconds."""
    import importlib.util
    import platform

    parts = [sys.platform, platform.machine()]
    for package in ("numba", "llvmlite"):
        spec = importlib.util.find_spec(package)
        folder = Path(spec.origin).parent.parent if spec and spec.origin else None
        found = sorted(p for p in os.listdir(folder) if p.startswith(f"{package}-")) if folder else []
        parts.append(f"{package}={found[0] if found else 'none'}")  # e.g. numba-0.68.1.dist-info
    try:
        with open("/proc/cpuinfo") as info:
            parts += [line.strip() for line in info if line.startswith(("model name", "flags", "Features"))][:2]
    except OSError:
        parts.append(platform.processor())
    return "\n".join(parts)


def _callees(fn: types.FunctionType) -> list[types.FunctionType]:
    """``fn`` and the plain functions of its module it calls, and theirs (what compiling it takes)."""
    found, todo = [fn], [fn]
    while todo:
        for name in sorted(_names(todo.pop().__code__)):
            callee = fn.__globals__.get(name)
            if isinstance(callee, types.FunctionType) and callee not in found:
                found.append(callee)
                todo.append(callee)
    return found


def _names(code: types.CodeType) -> set[str]:
    """The global names a compiled source refers to, nested functions included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def load(name: str, source: str, env: dict[str, Any], args: str) -> tuple[Callable, float]:
    """The function ``name`` defined by ``source`` (globals ``env``) as machine code, and the
    seconds spent compiling it here (0.0 when it came from the cache). ``args`` gives the
    kind of each argument: ``i`` int64 (addresses too), ``f`` float64; it returns an int64.
    Raises :class:`NotCompilable` where numba cannot compile it."""
    key = digest(source, env, args)
    if key in _LOADED:
        return _LOADED[key], 0.0
    folder = cache_dir()
    library = folder / f"{key}.so"
    fn = _opened(library, args)
    if fn is not None:
        _LOADED[key] = fn
        return fn, 0.0
    start, built = time.perf_counter(), False
    with _locked(folder, key):
        fn = _opened(library, args)  # (another process may have built it while this one waited)
        if fn is None:
            fn, built = _build(name, source, env, args, library), True
    _LOADED[key] = fn
    seconds = time.perf_counter() - start if built else 0.0
    if built:
        COMPILED.append((name, seconds))
    return fn, seconds


@contextlib.contextmanager
def _locked(folder: Path, key: str) -> Iterator[None]:
    """Holds ``key``'s lock file (where the folder can be written and locks exist)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / f"{key}.lock", "a")
    except OSError:
        yield
        return
    try:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX)
    except (ImportError, OSError):
        pass
    try:
        yield
    finally:
        handle.close()  # (closing releases the lock)


def _opened(library: Path, args: str) -> Callable | None:
    """The function of a library in the cache, or None: there is none, or it cannot be opened
    (cut short, or made for something else), in which case it goes and is built again."""
    if not library.exists():
        return None
    try:
        return _open(library, args)
    except OSError:
        library.unlink(missing_ok=True)
        return None


def _open(library: Path, args: str) -> Callable:
    import ctypes

    fn = ctypes.CDLL(str(library))[ENTRY]
    fn.argtypes = [getattr(ctypes, _TYPES[a][2]) for a in args]
    fn.restype = ctypes.c_int64
    return fn


def _build(name: str, source: str, env: dict[str, Any], args: str, library: Path) -> Callable:
    """Compile with numba; link into ``library`` where a C compiler is found, else keep numba's own."""
    import ctypes
    import subprocess

    compiled = _compile(name, source, env, args)
    cc = linker()
    if cc is not None:
        try:
            _link(compiled, args, library, cc)
            return _open(library, args)
        except (OSError, subprocess.CalledProcessError):
            pass  # an unwritable cache or a failing linker: the code still runs from this process
    address = compiled.library.get_pointer_to_function(_cfunc_name(compiled))
    fn = ctypes.CFUNCTYPE(ctypes.c_int64, *(getattr(ctypes, _TYPES[a][2]) for a in args))(address)
    fn._keep = compiled  # (the machine code lives as long as numba's library)
    return fn


def _compile(name: str, source: str, env: dict[str, Any], args: str) -> Any:
    """numba's compile result for the function (raises :class:`NotCompilable`)."""
    import numba
    from numba import types as nt

    helpers = {pointer: "pointer", int_pointer: "int_pointer", now: "now"}
    namespace = {k: intrinsics()[helpers[v]] if callable(v) and v in helpers else v for k, v in env.items()}
    for value in env.values():
        if isinstance(value, types.FunctionType) and value not in helpers:
            for fn in _callees(value):
                _jitable(fn)
    exec(compile(source, f"<optlab native {name}>", "exec"), namespace)  # noqa: S102 - our own source
    signature = nt.int64(*(getattr(nt, _TYPES[a][0]) for a in args))
    try:
        dispatcher = numba.njit(signature, error_model="numpy", no_cpython_wrapper=True)(namespace[name])
    except Exception as exc:  # noqa: BLE001 - numba's typing and lowering errors have no common base
        said = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise NotCompilable(f"numba cannot compile the generated {name}: {said[:400]}") from exc
    return dispatcher.overloads[signature.args]


_JITABLE: set[types.FunctionType] = set()


def _jitable(fn: types.FunctionType) -> None:
    """Let numba compile calls of the plain function ``fn`` (once; Python calls are unchanged)."""
    if fn not in _JITABLE:
        from numba.extending import register_jitable

        register_jitable(inline="always")(fn)
        _JITABLE.add(fn)


def _cfunc_name(compiled: Any) -> str:
    return "cfunc." + compiled.fndesc.mangled_name


def _link(compiled: Any, args: str, library: Path, cc: str) -> None:
    """Object code of numba's function behind a plain C entry point, linked into ``library``."""
    import subprocess
    import tempfile

    import llvmlite.binding as ll

    native = compiled.fndesc.mangled_name
    params = ", ".join(f"{_TYPES[a][1]} %a{i}" for i, a in enumerate(args))
    passed = ", ".join(f"{_TYPES[a][1]} %a{i}" for i, a in enumerate(args))
    # numba's calling convention: status = fn(return slot, exception slot, arguments...)
    entry = (f"define i64 @{ENTRY}({params}) {{\n  %r = alloca i64\n  %e = alloca ptr\n"
             f"  %s = call i32 @{native}(ptr %r, ptr %e, {passed})\n  %v = load i64, ptr %r\n  ret i64 %v\n}}\n")
    module = ll.parse_assembly(compiled.library.get_llvm_str() + entry)
    for fn in module.functions:
        if fn.name != ENTRY and not fn.is_declaration:
            fn.linkage = "internal"
    for var in module.global_variables:
        if not var.is_declaration:
            var.linkage = "internal"
    target = ll.Target.from_default_triple()
    machine = target.create_target_machine(cpu=ll.get_host_cpu_name(), features=ll.get_host_cpu_features().flatten(),
                                           opt=3, reloc="pic", codemodel="default")
    passes = ll.create_new_module_pass_manager()
    passes.add_global_dead_code_eliminate_pass()  # (numba's wrappers go: they call into Python)
    passes.run(module, ll.create_pass_builder(machine, ll.create_pipeline_tuning_options(speed_level=3)))
    module.verify()
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as tmp:
        obj = Path(tmp) / "code.o"
        obj.write_bytes(machine.emit_object(module))
        out = Path(tmp) / "code.so"
        subprocess.run([cc, "-shared", "-o", str(out), str(obj), "-lm"], check=True, capture_output=True)
        os.replace(out, library)


# -- helpers for generated code (numba intrinsics, made on first use) -----------------------------
def pointer(address: int) -> Any:
    """``address`` as an array of float64 (in generated code)."""
    raise NotImplementedError("only inside machine code")


def int_pointer(address: int) -> Any:
    """``address`` as an array of int64 (in generated code)."""
    raise NotImplementedError("only inside machine code")


def now() -> float:
    """``time.perf_counter()`` (in generated code): clock_gettime(CLOCK_MONOTONIC) in seconds."""
    raise NotImplementedError("only inside machine code")


def intrinsics() -> dict[str, Any]:
    """The numba forms of :func:`pointer`, :func:`int_pointer` and :func:`now`, to bind in generated code."""
    global _INTRINSICS
    if _INTRINSICS is None:
        _INTRINSICS = _make_intrinsics()
    return _INTRINSICS


_INTRINSICS: dict[str, Any] | None = None


def _make_intrinsics() -> dict[str, Any]:
    from llvmlite import ir
    from numba import types as nt
    from numba.core import cgutils
    from numba.extending import intrinsic

    i32, i64, double = ir.IntType(32), ir.IntType(64), ir.DoubleType()

    def cast(kind: Any, element: Any) -> Any:
        @intrinsic
        def cast_address(typingctx: Any, address: Any) -> Any:
            def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
                return builder.inttoptr(args[0], ir.PointerType(element))
            return nt.CPointer(kind)(nt.int64), codegen
        return cast_address

    @intrinsic
    def clock(typingctx: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            spec = cgutils.alloca_once(builder, ir.ArrayType(i64, 2))  # struct timespec {tv_sec; tv_nsec}
            fnty = ir.FunctionType(i32, [i32, ir.PointerType(i64)])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
            builder.call(fn, [ir.Constant(i32, time.CLOCK_MONOTONIC), builder.bitcast(spec, ir.PointerType(i64))])
            sec = builder.load(builder.gep(spec, [ir.Constant(i64, 0), ir.Constant(i32, 0)]))
            nsec = builder.load(builder.gep(spec, [ir.Constant(i64, 0), ir.Constant(i32, 1)]))
            ns = builder.add(builder.mul(sec, ir.Constant(i64, 10**9)), nsec)
            return builder.fdiv(builder.sitofp(ns, double), ir.Constant(double, 1e9))  # as perf_counter divides
        return nt.float64(), codegen

    return {"pointer": cast(nt.float64, double), "int_pointer": cast(nt.int64, i64), "now": clock}
