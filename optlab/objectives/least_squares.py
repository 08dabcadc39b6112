from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from .. import autodiff as ad
from ..errors import ConfigError, check_number
from .base import Objective


class LeastSquares(Objective):
    """f(x) = ||z - A x||^2 for a measurement z = A x_true + n (the second note).

    The data are generated from ``seed`` (``m`` rows, ``n`` unknowns, Gaussian noise of
    standard deviation ``noise``), or read from ``data``: an ``.npz`` file with arrays
    ``A`` and ``z``, or a ``.csv`` file whose rows are ``a_1, ..., a_n, z`` (recorded by its
    absolute path).
    The gradient -2 A^T (z - A x) and Hessian 2 A^T A are also written out analytically.
    """

    name = "least_squares"

    def __init__(self, m: int = 50, n: int = 5, noise: float = 0.1, seed: int = 0,
                 data: str | None = None) -> None:
        self.data = data
        if data is None:
            self.m = int(check_number("objective.m", m, low=1, strict=False, integer=True))
            self.n = int(check_number("objective.n", n, low=1, strict=False, integer=True))
            self.noise = float(check_number("objective.noise", noise, low=0, strict=False))
            self.seed = int(check_number("objective.seed", seed, integer=True))
            rng = np.random.default_rng(self.seed)
            self.A = rng.standard_normal((self.m, self.n))
            self.x_true = rng.standard_normal(self.n)
            self.z = self.A @ self.x_true + self.noise * rng.standard_normal(self.m)
        else:
            self.A, self.z = read_data(data)
            self.data = str(Path(data).expanduser().resolve())  # recorded absolute: readable from anywhere
            self.m, self.n = self.A.shape
            self.noise = self.seed = self.x_true = None
        x_ls, *_ = np.linalg.lstsq(self.A, self.z, rcond=None)
        self.dim = self.n
        self.x0 = np.zeros(self.n)
        self.minimizers = x_ls[None, :]
        self.f_star = float(np.sum((self.z - self.A @ x_ls) ** 2))
        half = 2.0 * max(1.0, float(np.max(np.abs(x_ls))))
        self.box = np.stack([x_ls - half, x_ls + half], axis=1)

    def params(self) -> dict:
        if self.data is not None:
            return {"m": self.m, "n": self.n, "data": str(self.data)}
        return {"m": self.m, "n": self.n, "noise": self.noise, "seed": self.seed}

    def residual(self, x: ad.Variable) -> ad.Variable:
        return self.z - ad.matmul(self.A, x)

    def f(self, x: ad.Variable) -> ad.Variable:
        r = self.residual(x)
        return ad.sum(r * r)

    def linear_system(self) -> tuple[np.ndarray, np.ndarray]:
        """(A, z) of the linear least-squares problem min ||z - A x||^2."""
        return self.A, self.z

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        r = self.z - self.A @ x
        return float(r @ r), -2.0 * (self.A.T @ r)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * (self.A.T @ self.A)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return 2.0 * (self.A.T @ (self.A @ v))


def read_data(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read (A, z) from ``.npz`` (arrays ``A``, ``z``) or ``.csv`` (rows ``a_1..a_n, z``)."""
    p = Path(path).expanduser()
    where = f"objective.data={str(path)!r}"
    if p.suffix not in (".npz", ".csv"):
        raise ConfigError(f"{where} has suffix {p.suffix!r}; allowed: a .npz or .csv file")
    if not p.is_file():
        raise ConfigError(f"{where} does not exist; allowed: a path to an existing .npz or .csv file")
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as npz:
                missing = {"A", "z"} - set(npz.files)
                if missing:
                    raise ConfigError(f"{where} lacks array(s) {sorted(missing)}; allowed: an .npz with arrays A and z")
                A, z = np.asarray(npz["A"], dtype=float), np.asarray(npz["z"], dtype=float)
        else:
            with warnings.catch_warnings():  # an empty file is reported below, in one line
                warnings.simplefilter("ignore")
                table = np.loadtxt(p, delimiter=",", ndmin=2, comments="#")
            A, z = table[:, :-1], table[:, -1]
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure is the file's fault
        raise ConfigError(f"{where} could not be read ({unreadable(exc)}); allowed: numeric A and z") from None
    if A.ndim == 1:
        A = A[:, None]
    if A.size == 0 or z.size == 0 or A.shape[1] == 0:
        raise ConfigError(f"{where} is empty; allowed: at least one row and one column of A")
    if A.ndim != 2 or z.ndim != 1 or A.shape[0] != z.shape[0]:
        raise ConfigError(f"{where} has A of shape {A.shape} and z of shape {z.shape}; "
                          "allowed: A of shape (m, n) and z of shape (m,)")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(z))):
        raise ConfigError(f"{where} contains NaN or inf; allowed: finite numbers")
    return A, z


def unreadable(exc: Exception) -> str:
    """Why a data file could not be parsed, in words that never quote it: the file may be anything
    (a symlinked ``data.csv`` pointing at a system file), and its content is not for the console."""
    text = str(exc)
    cell = re.search(r"at row (\d+), column (\d+)", text)
    if "could not convert" in text and cell:
        return f"data row {int(cell[1]) + 1}, column {cell[2]} is not a number"
    columns = re.search(r"number of columns changed from (\d+) to (\d+) at row (\d+)", text)
    if columns:
        return f"rows of {columns[1]} and of {columns[2]} values, from data row {columns[3]}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start})"
    if "could not convert" in text or "invalid literal" in text:
        return "a value is not a number"
    return type(exc).__name__
