"""Exceptions and dtype mapping shared by both backends."""
import numpy as np

try:  # float8 / bfloat16 NumPy dtypes
    import ml_dtypes as _mld
except ImportError:  # pragma: no cover - depends on the environment
    _mld = None


class Ecf8Error(Exception):
    """Any failure reading an .ecf8 container."""


class CorruptError(Ecf8Error):
    """Malformed or inconsistent container (ECF8_ERR_CORRUPT)."""


class ChecksumError(CorruptError):
    """A header, index or tensor checksum does not match (ECF8_ERR_CHECKSUM)."""


class VersionError(Ecf8Error):
    """A container format version this reader does not read (ECF8_ERR_VERSION)."""


class UnsupportedError(Ecf8Error):
    """Valid but not readable here (ECF8_ERR_UNSUPPORTED, a missing optional package)."""


class TensorNotFoundError(Ecf8Error, KeyError):
    """No tensor of that name (ECF8_ERR_NOT_FOUND)."""

    def __str__(self):  # KeyError would quote the message
        return Exception.__str__(self)


class LibraryNotFoundError(Ecf8Error):
    """The ctypes backend found no libecf8 shared library."""


# safetensors dtype name -> NumPy dtype (little-endian).  F8/BF16 without
# ml_dtypes: the raw bit patterns as uint8/uint16 of the same shape.
_NATIVE = {
    "F16": "<f2", "F32": "<f4", "F64": "<f8",
    "I8": "i1", "I16": "<i2", "I32": "<i4", "I64": "<i8",
    "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8",
    "BOOL": "?",
}
_ML = {"F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "BF16": "bfloat16",
       "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz", "F8_E8M0": "float8_e8m0fnu"}
_RAW = {"F8_E4M3": "u1", "F8_E5M2": "u1", "BF16": "<u2",
        "F8_E4M3FNUZ": "u1", "F8_E5M2FNUZ": "u1", "F8_E8M0": "u1"}


def numpy_dtype(dtype_name):
    """NumPy dtype of a safetensors dtype name, or None when unknown (such
    tensors come back as their raw bytes, a 1-D uint8 array)."""
    if dtype_name in _NATIVE:
        return np.dtype(_NATIVE[dtype_name])
    if dtype_name in _ML:
        if _mld is not None and hasattr(_mld, _ML[dtype_name]):  # float8_e8m0fnu: ml_dtypes >= 0.5
            return np.dtype(getattr(_mld, _ML[dtype_name]))
        return np.dtype(_RAW[dtype_name])
    return None


def to_array(raw, dtype_name, shape):
    """Views the tensor's original bytes (a uint8 array) as its dtype and shape."""
    dt = numpy_dtype(dtype_name)
    if dt is None or (dt.itemsize and raw.size % dt.itemsize):
        return raw
    arr = raw.view(dt)
    n = 1
    for d in shape:
        n *= d
    if n != arr.size:
        raise CorruptError("tensor of shape %s does not hold %d elements" % (list(shape), arr.size))
    return arr.reshape(tuple(shape))


class _Names:
    """Name lookup shared by the backends (self.names: name -> index)."""

    def index_of(self, name):
        try:
            return self.names[name]
        except KeyError:
            raise TensorNotFoundError("%s: no tensor named %r" % (self.path, name)) from None
