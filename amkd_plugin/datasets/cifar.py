# Copyright (c) amkd-mmrazor contributors.
"""CIFAR-10/100 datasets that work offline and on tiny test copies."""
from typing import List

from mmengine.fileio import exists, join_path
from mmpretrain.datasets import CIFAR10, CIFAR100
from mmpretrain.datasets.utils import check_md5 as md5_matches
from mmpretrain.registry import DATASETS


class _OfflineCIFARMixin:
    """Offline behaviour shared by :class:`OfflineCIFAR10` and
    :class:`OfflineCIFAR100`.

    Reading, label parsing and the optional download stay in MMPretrain's
    :class:`~mmpretrain.datasets.CIFAR10`; this mixin only changes the
    defaults (no download, no md5 check) and turns missing files into one
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
        """Check the files, then load them with MMPretrain's CIFAR code.

        Returns:
            list[dict]: One ``dict(img=HxWx3 uint8 array, gt_label=int)`` per
            image.

        Raises:
            FileNotFoundError: If files are missing and ``download`` is False.
            RuntimeError: If ``check_md5`` is True and a checksum differs.
        """
        if not self.download:
            self._raise_if_incomplete()
        return super().load_data_list()

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
