"""Print the AVX-512 targets that this numpy dispatches to, for NPY_DISABLE_CPU_FEATURES."""

try:
    from numpy._core._multiarray_umath import __cpu_dispatch__
except ImportError:  # numpy < 2
    from numpy.core._multiarray_umath import __cpu_dispatch__

print(" ".join(name for name in __cpu_dispatch__ if "AVX512" in name or name == "X86_V4"))
