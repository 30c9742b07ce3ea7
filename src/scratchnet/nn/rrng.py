"""R-compatible random numbers: ``set.seed(seed)`` followed by ``rnorm``.

R's defaults are the Mersenne-Twister uniform generator, seeded through R's own
linear-congruential scrambling, and normals by inversion (two uniforms for 59 bits of
precision, then Wichura's AS 241 quantile function). This module reproduces that stream
bit for bit in pure Python, so the article's numbers come out of Python unchanged.
Sources: R's src/main/RNG.c (RNG_Init, MT_genrand, fixup) and src/nmath/qnorm.c.
"""

from __future__ import annotations

import math

import numpy as np

_N, _M = 624, 397
_MATRIX_A, _UPPER, _LOWER = 0x9908B0DF, 0x80000000, 0x7FFFFFFF
_U32 = 0xFFFFFFFF
_I2_32M1 = 2.328306437080797e-10  # 1 / (2^32 - 1), R's bound for fixup()
_BIG = 134217728  # 2^27: R combines two uniforms for a 59-bit normal quantile


class RRandom:
    """One R random stream: ``RRandom(1).rnorm(5)`` equals R's ``set.seed(1); rnorm(5)``."""

    def __init__(self, seed: int):
        scrambled = seed & _U32
        for _ in range(50):  # R's "initial scrambling"
            scrambled = (69069 * scrambled + 1) & _U32
        seeds = []
        for _ in range(_N + 1):  # i_seed[0] is the position, then 624 state words
            scrambled = (69069 * scrambled + 1) & _U32
            seeds.append(scrambled)
        self._mt = seeds[1:]
        self._pos = _N  # FixupSeeds: the first draw regenerates the whole state

    def _twist(self) -> None:
        mt = self._mt
        for k in range(_N):
            y = (mt[k] & _UPPER) | (mt[(k + 1) % _N] & _LOWER)
            mt[k] = mt[(k + _M) % _N] ^ (y >> 1) ^ (_MATRIX_A if y & 1 else 0)
        self._pos = 0

    def unif_rand(self) -> float:
        """One uniform in (0, 1), as R's ``runif(1)``."""
        if self._pos >= _N:
            self._twist()
        y = self._mt[self._pos]
        self._pos += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        u = y * 2.3283064365386963e-10  # [0, 1)
        if u <= 0.0:
            return 0.5 * _I2_32M1
        if 1.0 - u <= 0.0:
            return 1.0 - 0.5 * _I2_32M1
        return u

    def norm_rand(self) -> float:
        """One standard normal by inversion, as R's ``rnorm(1)``."""
        u = self.unif_rand()
        u = int(_BIG * u) + self.unif_rand()
        return qnorm(u / _BIG)

    def rnorm(self, n: int, mean: float = 0.0, sd: float = 1.0) -> np.ndarray:
        """``n`` normals, shape (n,), as R's ``rnorm(n, mean, sd)``."""
        return np.array([mean + sd * self.norm_rand() for _ in range(n)], dtype=np.float64)


def qnorm(p: float) -> float:
    """Standard normal quantile for 0 < p < 1: Wichura's AS 241 (PPND16), as R's qnorm."""
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return (
            q
            * (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r
                    + 67265.770927008700853) * r + 45921.953931549871457) * r
                  + 13731.693765509461125) * r + 1971.5909503065514427) * r
                + 133.14166789178437745) * r + 3.387132872796366608)
            / (((((((r * 5226.495278852545925 + 28729.085735721942674) * r
                    + 39307.89580009271061) * r + 21213.794301586595867) * r
                  + 5394.1960214247511077) * r + 687.1870074920579083) * r
                + 42.313330701600911252) * r + 1.0)
        )
    r = math.sqrt(-math.log(1.0 - p if q > 0 else p))
    if r <= 5.0:
        r -= 1.6
        val = (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r
                    + 0.24178072517745061177) * r + 1.27045825245236838258) * r
                  + 3.64784832476320460504) * r + 5.7694972214606914055) * r
                + 4.6303378461565452959) * r + 1.42343711074968357734) / (
            ((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r
                 + 0.0151986665636164571966) * r + 0.14810397642748007459) * r
               + 0.68976733498510000455) * r + 1.6763848301838038494) * r
             + 2.05319162663775882187) * r + 1.0)
    else:  # only reachable for p within exp(-25) of 0 or 1
        r -= 5.0
        val = (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r
                    + 0.0012426609473880784386) * r + 0.026532189526576123093) * r
                  + 0.29656057182850489123) * r + 1.7848265399172913358) * r
                + 5.4637849111641143699) * r + 6.6579046435011037772) / (
            ((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r
                 + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r
               + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
             + 0.59983220655588793769) * r + 1.0)
    return -val if q < 0.0 else val
