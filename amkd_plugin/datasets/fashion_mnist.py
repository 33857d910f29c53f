# Copyright (c) amkd-mmrazor contributors.
"""Fashion-MNIST read offline, with the test split chosen by ``split``."""
import math
import struct
from typing import List

from mmengine.fileio import exists, join_path
from mmpretrain.datasets import FashionMNIST
from mmpretrain.datasets.utils import rm_suffix
from mmpretrain.registry import DATASETS

from amkd_plugin.utils import UserInputError

GET_DATA = 'bash scripts/get_data.sh fashion-mnist'
# IDX headers: magic (0x0803 images of 3 dimensions, 0x0801 labels of 1),
# then each dimension as a big-endian uint32; one uint8 a value after.
_IDX = {'images': (2051, 3), 'labels': (2049, 1)}


@DATASETS.register_module()
class OfflineFashionMNIST(FashionMNIST):
    """Fashion-MNIST (Zalando; 60,000 training and 10,000 test images of
    28x28 grey product photos, 10 classes) read from the four extracted
    IDX files in ``data_root``::

        train-images-idx3-ubyte  train-labels-idx1-ubyte
        t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte

    Reading stays MMPretrain's :class:`~mmpretrain.datasets.FashionMNIST`,
    which yields ``img`` as a ``(28, 28)`` uint8 array. Two defaults
    differ:

    - ``download`` is False, and missing files raise one
      :class:`FileNotFoundError` naming the command that puts them there;
    - the files follow ``split``: MMPretrain 1.2.0 picks them by
      ``test_mode`` alone, so its ``split='test'`` without
      ``test_mode=True`` silently serves the 60,000 training images;
    - a truncated or damaged file, or images and labels of different
      counts, stop with one line naming the file, where MMPretrain raises
      a bare assertion or silently pairs the shorter count.

    Args:
        data_root (str): Folder of the extracted IDX files.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        download (bool): Download the official archives when files are
            missing (needs internet access). Defaults to False.
        **kwargs: Other arguments of MMPretrain's ``FashionMNIST`` except
            ``test_mode``, which ``split`` sets.
    """

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 download: bool = False,
                 **kwargs) -> None:
        kwargs['test_mode'] = split == 'test'
        super().__init__(
            data_root=data_root, split=split, download=download, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Check the files are there, then read them as MMPretrain does."""
        root = self.data_prefix['root']
        names = [rm_suffix(name) for name, _ in self.train_list +
                 self.test_list]
        missing = [n for n in names if not exists(join_path(root, n))]
        if missing and not self.download:
            raise FileNotFoundError(
                f'Fashion-MNIST: {", ".join(missing)} missing in {root}; '
                f'run `{GET_DATA}` (or set data_root to the folder of the '
                'four extracted IDX files).')
        if not missing:
            files = self.test_list if self.test_mode else self.train_list
            counts = [
                _check_idx(join_path(root, rm_suffix(name)), kind)
                for (name, _), kind in zip(files, ('images', 'labels'))
            ]
            if counts[0] != counts[1]:
                raise UserInputError(
                    f'Fashion-MNIST: {root} has {counts[0]} images but '
                    f'{counts[1]} labels for the {self.split} split; run '
                    f'`{GET_DATA}` again.')
        return super().load_data_list()


def _check_idx(path: str, kind: str) -> int:
    """The item count of the IDX file ``path``, checked against its size."""
    magic, dims = _IDX[kind]
    header = 4 * (1 + dims)
    with open(path, 'rb') as f:
        head = f.read(header)
        size = f.seek(0, 2)
    values = struct.unpack(f'>{1 + dims}I', head) if len(
        head) == header else (None, )
    expected = header + math.prod(values[1:]) if values[0] else None
    if values[0] != magic or size != expected:
        what = (f'{size} bytes where its header promises {expected}'
                if values[0] == magic else 'not its header')
        raise UserInputError(
            f'Fashion-MNIST: {path} is not an IDX file of {kind} or is '
            f'damaged ({what}); run `{GET_DATA}` again.')
    return values[1]
