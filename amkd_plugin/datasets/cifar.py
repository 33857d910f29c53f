# Copyright (c) amkd-mmrazor contributors.
"""CIFAR-10/100 datasets that work offline and on tiny test copies."""
from typing import List

import mmengine.dist as dist
import numpy as np
from mmengine.fileio import exists, get, join_path
from mmpretrain.datasets import CIFAR10, CIFAR100
from mmpretrain.datasets.utils import check_md5 as md5_matches
from mmpretrain.datasets.utils import download_and_extract_archive
from mmpretrain.registry import DATASETS

from amkd_plugin.utils import UserInputError
from amkd_plugin.utils.safe_pickle import load_data_pickle


class _OfflineCIFARMixin:
    """Offline behaviour shared by :class:`OfflineCIFAR10` and
    :class:`OfflineCIFAR100`.

    The files, MMPretrain's layout and labels, are read with a restricted
    unpickler (:func:`~amkd_plugin.utils.safe_pickle.load_data_pickle`)
    instead of MMPretrain's ``pickle.loads``: a file that carries code is
    refused before any of it runs, and a damaged one is named in one line.
    Defaults: no download, no md5 check; missing files raise one
    :class:`FileNotFoundError` that explains how to get them.

    Args:
        data_root (str): Folder that contains the extracted archive folder
            (``cifar-10-batches-py`` or ``cifar-100-python``).
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        download (bool): Download and extract the official archive into
            ``data_root`` when files are missing. Needs internet access.
            Defaults to False.
        check_md5 (bool): Verify the md5 checksums of the official files.
            Off by default so that re-packed or tiny copies in the same
            format load too. Defaults to False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.CIFAR10`.
    """

    # Classes come from the ``meta`` file on disk, which the parent reads
    # only when no classes are known yet.
    METAINFO: dict = {}

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 download: bool = False,
                 check_md5: bool = False,
                 **kwargs) -> None:
        if not check_md5:
            # The parent skips a checksum whose md5 entry is None.
            self.train_list = [[name, None] for name, _ in self.train_list]
            self.test_list = [[name, None] for name, _ in self.test_list]
            self.meta = {**self.meta, 'md5': None}
        super().__init__(
            data_root=data_root, split=split, download=download, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Check the files, then read them without running any code.

        Returns:
            list[dict]: One ``dict(img=HxWx3 uint8 array, gt_label=int)`` per
            image.

        Raises:
            FileNotFoundError: If files are missing and ``download`` is False.
            RuntimeError: If ``check_md5`` is True and a checksum differs.
            UserInputError: If a file is damaged or names anything but
                plain values and numpy arrays.
        """
        root = self.data_prefix['root']
        if self.download and dist.is_main_process() and \
                not self._check_integrity():
            download_and_extract_archive(
                self.url, root, filename=self.filename, md5=self.tgz_md5)
        dist.barrier()
        self._raise_if_incomplete()
        files = self.train_list if self.split == 'train' else self.test_list
        images, labels = [], []
        for name, _ in files:
            entry = self._read(name)
            data = entry.get('data') if isinstance(entry, dict) else None
            found = entry.get('labels', entry.get('fine_labels')) if (
                data is not None) else None
            if not (isinstance(data, np.ndarray) and data.dtype == np.uint8
                    and data.ndim == 2 and data.shape[1] == 3 * 32 * 32
                    and found is not None and len(found) == len(data)):
                raise UserInputError(
                    f'{self._file(name)} is not a CIFAR batch (a dict of '
                    "'data', N x 3072 uint8, and N labels). "
                    f'{self._fix()}')
            images.append(data)
            labels.extend(found)
        images = np.vstack(images).reshape(-1, 3, 32, 32).transpose(
            0, 2, 3, 1)  # HWC, as MMPretrain's CIFAR gives them
        if self.CLASSES is None:
            meta = self._read(self.meta['filename'])
            self._metainfo.setdefault('classes', meta[self.meta['key']])
        return [dict(img=img, gt_label=int(label))
                for img, label in zip(images, labels)]

    def _file(self, name: str) -> str:
        return join_path(self.data_prefix['root'], self.base_folder, name)

    def _fix(self) -> str:
        return (f'Extract the official archive ({self.url}) into data_root '
                f'({self.data_prefix["root"]}) again.')

    def _read(self, name: str):
        path = self._file(name)
        return load_data_pickle(get(path), path, self._fix())

    def _expected_files(self) -> List[list]:
        """All ``[file name, md5 or None]`` entries of the archive."""
        return self.train_list + self.test_list + [
            [self.meta['filename'], self.meta['md5']]
        ]

    def _raise_if_incomplete(self) -> None:
        """Raise one explanatory error for missing or corrupted files."""
        root = self.data_prefix['root']
        folder = join_path(root, self.base_folder)
        expected = self._expected_files()
        missing = [
            name for name, _ in expected
            if not exists(join_path(folder, name))
        ]
        if missing:
            names = ', '.join(name for name, _ in expected)
            raise FileNotFoundError(
                f'{type(self).__name__}: missing {missing} in {folder}. '
                f'Expected the extracted official archive, i.e. the files '
                f'{{{names}}} in {folder}. Download {self.url} and extract '
                f'it into data_root ({root}), e.g. '
                f'`tar -xzf {self.filename} -C {root}`, or pass '
                f'download=True on a machine with internet access.')
        corrupted = [
            name for name, md5 in expected
            if md5 is not None and not md5_matches(
                join_path(folder, name), md5)
        ]
        if corrupted:
            raise RuntimeError(
                f'{type(self).__name__}: md5 checksum mismatch for '
                f'{corrupted} in {folder}. Re-extract {self.url} into '
                f'data_root, or pass check_md5=False to accept the files.')


@DATASETS.register_module()
class OfflineCIFAR10(_OfflineCIFARMixin, CIFAR10):
    """CIFAR-10 read from ``<data_root>/cifar-10-batches-py`` without
    network access or md5 checks by default.

    See :class:`_OfflineCIFARMixin` for the arguments.
    """


@DATASETS.register_module()
class OfflineCIFAR100(_OfflineCIFARMixin, CIFAR100):
    """CIFAR-100 (fine labels) read from ``<data_root>/cifar-100-python``
    without network access or md5 checks by default.

    See :class:`_OfflineCIFARMixin` for the arguments.
    """
