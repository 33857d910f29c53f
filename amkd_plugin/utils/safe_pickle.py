# Copyright (c) amkd-mmrazor contributors.
"""Data pickles read so that they cannot run code.

A pickle names the callables that rebuild its objects, and ``pickle.load``
calls whatever it names: a dataset file swapped for one naming
``os.system`` runs a command when training starts. The CIFAR python files
hold dicts, lists, strings, bytes and numbers, which pickle builds without
naming anything, and numpy arrays, which name three numpy callables; this
unpickler admits those three (and the latin-1 encoding with which Python 3
writes bytes at protocol 2) and refuses every other name before anything
is called.
"""
import codecs
import io
import pickle
from typing import Any, Callable, Dict, Tuple

import numpy as np

from .errors import UserInputError

_MULTIARRAY = np._core.multiarray if hasattr(np, '_core') else \
    np.core.multiarray

# What a pickled numpy array names: numpy 1 writes numpy.core.multiarray,
# numpy 2 numpy._core.multiarray. _reconstruct only makes an empty array of
# the class it is given, and the class must itself be admitted here.
ARRAY_GLOBALS: Dict[Tuple[str, str], Callable] = {
    **{(module, '_reconstruct'): _MULTIARRAY._reconstruct
       for module in ('numpy.core.multiarray', 'numpy._core.multiarray')},
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}


def _latin1_bytes(text: str, encoding: str = 'utf-8') -> bytes:
    """``_codecs.encode`` as protocol 2 uses it for bytes, latin-1 only."""
    if codecs.lookup(encoding).name != 'iso8859-1':
        raise pickle.UnpicklingError(f'bytes in the encoding {encoding!r}')
    return codecs.encode(text, 'latin-1')


class UnsafePickleError(UserInputError):
    """A data pickle names something no data file of its kind holds."""


class _DataUnpickler(pickle.Unpickler):

    def __init__(self, file, path: str, fix: str) -> None:
        super().__init__(file, encoding='latin1')
        self.path, self.fix = path, fix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ('_codecs', 'encode'):
            return _latin1_bytes
        try:
            return ARRAY_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f'{self.path} asks to call {module}.{name}, which a data '
                'file of this kind never holds: it may carry code, and '
                f'nothing of it was run. {self.fix}') from None


def load_data_pickle(data: bytes, path: str, fix: str) -> Any:
    """Unpickle ``data`` (the bytes of ``path``), admitting plain values
    and numpy arrays only; text as Python 2 wrote it (latin-1).

    Args:
        data (bytes): The file's content.
        path (str): Its path, for the message.
        fix (str): What to do about a refused or damaged file (e.g. which
            archive to extract again).

    Returns:
        The unpickled object.

    Raises:
        UnsafePickleError: If the pickle names anything else.
        UserInputError: If the pickle is truncated or damaged.
    """
    try:
        return _DataUnpickler(io.BytesIO(data), path, fix).load()
    except UnsafePickleError:
        raise
    except Exception as error:  # truncated or garbled: pickle's own errors
        raise UserInputError(
            f'{path} is damaged ({type(error).__name__}: {error}). '
            f'{fix}') from None
