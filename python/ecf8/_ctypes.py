"""ctypes binding to libecf8 (the C library of this repository): the
library opens, validates, decodes (multi-threaded) and checks every
checksum; Python only wraps the result in a NumPy array."""
import ctypes
import ctypes.util
import os

import numpy as np

from ._common import (_Names, ChecksumError, CorruptError, Ecf8Error, LibraryNotFoundError,
                      TensorNotFoundError, UnsupportedError, VersionError, to_array)

ECF8_MAX_DIMS = 8
_ERRORS = {-3001: Ecf8Error, -3002: CorruptError, -3003: ChecksumError, -3004: VersionError,
           -3006: Ecf8Error, -3007: UnsupportedError, -3008: TensorNotFoundError}


class _Stream(ctypes.Structure):  # ecf8_stream, include/ecf8.h
    _fields_ = [("dtype", ctypes.c_int), ("split", ctypes.c_int),
                ("code_bits", ctypes.c_uint), ("n_symbols", ctypes.c_uint),
                ("n_elements", ctypes.c_uint64), ("rows", ctypes.c_uint64),
                ("cols", ctypes.c_uint64), ("chunk_rows", ctypes.c_uint64),
                ("chunk_cols", ctypes.c_uint64), ("n_chunks", ctypes.c_uint64),
                ("coded_bytes", ctypes.c_uint64), ("lengths", ctypes.c_uint8 * 256),
                ("chunk_offsets", ctypes.c_void_p), ("coded", ctypes.c_void_p),
                ("stream_layout", ctypes.c_uint)]


class _TensorInfo(ctypes.Structure):  # ecf8_tensor_info, include/ecf8.h
    _fields_ = [("name", ctypes.c_char_p), ("dtype_name", ctypes.c_char_p),
                ("dtype", ctypes.c_int), ("split", ctypes.c_int), ("ndim", ctypes.c_uint),
                ("shape", ctypes.c_uint64 * ECF8_MAX_DIMS), ("n_elements", ctypes.c_uint64),
                ("source_bytes", ctypes.c_uint64), ("payload_bytes", ctypes.c_uint64),
                ("checksum", ctypes.c_uint64), ("source_file", ctypes.c_uint),
                ("payload", ctypes.c_void_p), ("stream", _Stream)]


# The library writes sizeof(ecf8_tensor_info) bytes; the mirror is checked
# against it at run time: a larger C struct would write into this guard.
_GUARD = 512


class _InfoBuffer(ctypes.Structure):
    _fields_ = [("info", _TensorInfo), ("guard", ctypes.c_uint8 * _GUARD)]


def find_library():
    """Path of libecf8: $ECF8_LIBRARY, then ctypes.util.find_library('ecf8'),
    then a build tree of this repository (build*/libecf8.so); None if none."""
    env = os.environ.get("ECF8_LIBRARY")
    if env:
        return env
    found = ctypes.util.find_library("ecf8")
    if found:
        return found
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    for b in ("build", "build-noCL", "build-release"):
        cand = os.path.join(repo, b, "libecf8.so")
        if os.path.exists(cand):
            return cand
    return None


_lib = None


def library():
    global _lib
    if _lib is not None:
        return _lib
    path = find_library()
    if path is None:
        raise LibraryNotFoundError("libecf8 not found: set ECF8_LIBRARY to the path of "
                                   "libecf8.so, install it, or use backend='pure'")
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise LibraryNotFoundError("cannot load %s: %s" % (path, e)) from None
    vp, sz, c = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
    lib.ecf8_file_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(vp)]
    lib.ecf8_file_open.restype = c
    lib.ecf8_file_close.argtypes = [vp]
    lib.ecf8_file_close.restype = None
    lib.ecf8_file_tensor_count.argtypes = [vp]
    lib.ecf8_file_tensor_count.restype = sz
    lib.ecf8_file_tensor.argtypes = [vp, sz, ctypes.POINTER(_InfoBuffer)]
    lib.ecf8_file_tensor.restype = c
    lib.ecf8_file_find.argtypes = [vp, ctypes.c_char_p, ctypes.POINTER(sz)]
    lib.ecf8_file_find.restype = c
    lib.ecf8_file_read_tensor.argtypes = [vp, sz, vp, sz, ctypes.c_uint]
    lib.ecf8_file_read_tensor.restype = c
    lib.ecf8_last_error.argtypes = []
    lib.ecf8_last_error.restype = ctypes.c_char_p
    lib.ecf8_status_string.argtypes = [c]
    lib.ecf8_status_string.restype = ctypes.c_char_p
    lib.ecf8_clear_error.argtypes = []
    lib.ecf8_clear_error.restype = None
    lib._ecf8_path = path
    _lib = lib
    return lib


def _raise(lib, status, what):
    detail = (lib.ecf8_last_error() or b"").decode("utf-8", "replace")
    name = lib.ecf8_status_string(status).decode()
    cls = _ERRORS.get(status, Ecf8Error)
    raise cls("%s: %s%s" % (what, detail or name, "" if not detail else " (%s)" % name))


class LibFile(_Names):
    """An open container (ecf8_file_open)."""

    def __init__(self, path, threads=0):
        self.lib = lib = library()
        self.path = str(path)
        self.threads = threads
        self._h = ctypes.c_void_p()
        lib.ecf8_clear_error()
        st = lib.ecf8_file_open(os.fsencode(path), ctypes.byref(self._h))
        if st:
            _raise(lib, st, self.path)
        self.tensors = [self._info(i) for i in range(lib.ecf8_file_tensor_count(self._h))]
        self.names = {}
        for i, t in enumerate(self.tensors):
            self.names.setdefault(t[0], i)

    def _info(self, i):
        buf = _InfoBuffer()
        ctypes.memset(ctypes.byref(buf.guard), 0xA5, _GUARD)
        st = self.lib.ecf8_file_tensor(self._h, i, ctypes.byref(buf))
        if st:
            _raise(self.lib, st, self.path)
        if any(b != 0xA5 for b in buf.guard):
            raise Ecf8Error("libecf8's ecf8_tensor_info is larger than the ctypes mirror "
                            "(%s is of another version): use backend='pure'" % self.lib._ecf8_path)
        t = buf.info
        shape = tuple(t.shape[:t.ndim]) if t.ndim <= ECF8_MAX_DIMS else None
        if shape is None:
            raise Ecf8Error("ecf8_tensor_info mismatch (ndim %d)" % t.ndim)
        return (t.name.decode("utf-8", "replace"), t.dtype_name.decode("utf-8", "replace"),
                shape, t.source_bytes)

    def close(self):
        if self._h:
            self.lib.ecf8_file_close(self._h)
            self._h = ctypes.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def read_raw(self, i):
        n = self.tensors[i][3]
        out = np.empty(n, np.uint8)
        self.lib.ecf8_clear_error()
        st = self.lib.ecf8_file_read_tensor(self._h, i, out.ctypes.data if n else None, n,
                                            self.threads)
        if st:
            _raise(self.lib, st, "%s: tensor %r" % (self.path, self.tensors[i][0]))
        return out

    def read(self, i):
        name, dtype_name, shape, _ = self.tensors[i]
        return to_array(self.read_raw(i), dtype_name, shape)
