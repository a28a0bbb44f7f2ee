#!/usr/bin/python3
# make_fixtures.py: writes the tiny .npy fixtures of tests/test_npy.c with NumPy itself.
# Run once with /usr/bin/python3 (NumPy >= 1.24, which aligns headers to 64 bytes); not run by the tests.
import os
import numpy as np
from numpy.lib import format as npf

assert tuple(int(x) for x in np.__version__.split(".")[:2]) >= (1, 24), "needs NumPy >= 1.24"
here = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(here, name)


def write_version(name, arr, version):
    with open(path(name), "wb") as f:
        npf.write_array(f, arr, version=version)


# Values the C test recomputes with the same IEEE operations (see test_npy.c).
i24 = np.arange(24, dtype=np.float64)
np.save(path("f8_234.npy"), ((i24 - 12) * 0.125).reshape(2, 3, 4))            # float64, 3-D
np.save(path("f4_35.npy"), (np.arange(15, dtype=np.float64) * 0.1).astype(np.float32).reshape(3, 5))
np.save(path("f8_5.npy"), np.arange(5, dtype=np.float64) / 3.0)                # 1-D: shape (5,)
np.save(path("f8_scalar.npy"), np.array(2.5))                                  # shape ()
np.save(path("f8_empty.npy"), np.zeros((0, 3)))                                # no data bytes
write_version("f8_v2.npy", np.arange(4, dtype=np.float64).reshape(2, 2) - 1.5, (2, 0))
write_version("f8_v3.npy", np.arange(3, dtype=np.float64) * 4.0, (3, 0))
# Files NumPy writes happily that the reader must refuse.
np.save(path("i8.npy"), np.arange(3, dtype="<i8"))
np.save(path("be_f8.npy"), np.arange(3, dtype=">f8"))
np.save(path("fortran.npy"), np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)))
