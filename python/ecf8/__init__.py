"""Read .ecf8 containers (docs/FORMAT.md) into NumPy arrays.

    import ecf8
    tensors = ecf8.load_file("model.ecf8")          # {name: numpy.ndarray}
    w = ecf8.load_tensor("model.ecf8", "layer.weight")

Backends (the `backend` argument):
  "lib"   ctypes binding to libecf8.so (found via $ECF8_LIBRARY, then
          ctypes.util.find_library("ecf8"), then this repository's build
          tree): the C library validates, decodes with `threads` threads
          (0: one per core) and checks every checksum.
  "pure"  NumPy only, written from docs/FORMAT.md; format 1.1 files need
          zstandard, checksums need xxhash (see ecf8._pure).
  None    (default) "lib" when libecf8 can be found, else "pure".

dtypes: F8_E4M3 -> ml_dtypes.float8_e4m3fn, F8_E5M2 -> ml_dtypes.float8_e5m2,
BF16 -> ml_dtypes.bfloat16 when ml_dtypes is importable; without it the raw
bit patterns as uint8 (F8) / uint16 (BF16) of the same shape.  F16, F32,
F64, I*, U*, BOOL: the native NumPy dtype.  A dtype NumPy has no type for
comes back as its raw bytes (1-D uint8).
"""
from ._common import (ChecksumError, CorruptError, Ecf8Error, LibraryNotFoundError,
                      TensorNotFoundError, UnsupportedError, VersionError, numpy_dtype)

__version__ = "1.0.0"
__all__ = ["load_file", "load_tensor", "open_file", "default_backend", "Ecf8Error",
           "CorruptError", "ChecksumError", "VersionError", "UnsupportedError",
           "TensorNotFoundError", "LibraryNotFoundError", "numpy_dtype"]


def default_backend():
    """"lib" when libecf8 can be loaded, else "pure"."""
    from . import _ctypes
    try:
        _ctypes.library()
        return "lib"
    except LibraryNotFoundError:
        return "pure"


class Ecf8File:
    """An open container: the header and the index are read and checked;
    tensors are decoded on request."""

    def __init__(self, path, backend=None, threads=0):
        backend = backend or default_backend()
        if backend == "lib":
            from ._ctypes import LibFile
            self._f = LibFile(path, threads)
        elif backend == "pure":
            from ._pure import PureFile
            self._f = PureFile(path)
        else:
            raise ValueError("backend must be 'lib', 'pure' or None, not %r" % (backend,))
        self.backend = backend
        self.path = str(path)

    def keys(self):
        return [t[0] if isinstance(t, tuple) else t.name for t in self._f.tensors]

    def __len__(self):
        return len(self._f.tensors)

    def __contains__(self, name):
        return name in self._f.names

    def __getitem__(self, name):
        return self._f.read(self._f.index_of(name))

    def items(self):
        for i, name in enumerate(self.keys()):
            yield name, self._f.read(i)

    def close(self):
        close = getattr(self._f, "close", None)
        if close:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_file(path, backend=None, threads=0):
    return Ecf8File(path, backend, threads)


def load_file(path, backend=None, threads=0):
    """Every tensor of the container, {name: numpy.ndarray}, in file order
    (a name that occurs twice, possible across shards, keeps its first)."""
    with Ecf8File(path, backend, threads) as f:
        out = {}
        for name, arr in f.items():
            out.setdefault(name, arr)
        return out


def load_tensor(path, name, backend=None, threads=0):
    """One tensor by name; TensorNotFoundError (a KeyError) when absent."""
    with Ecf8File(path, backend, threads) as f:
        return f[name]
