# Copyright (c) amkd-mmrazor contributors.
"""Tiny ImageNet read from the layout of the original archive."""
from typing import Dict, List, Tuple

import mmcv
from mmengine.fileio import exists, get, get_text, isdir, join_path
from mmengine.fileio import list_dir_or_file
from mmpretrain.datasets.base_dataset import BaseDataset
from mmpretrain.registry import DATASETS

from amkd_plugin.utils import UserValueError

IMAGE_SUFFIXES = ('.JPEG', '.jpeg', '.jpg', '.png')

EXPECTED_LAYOUT = """\
<data_root>/                 (tiny-imagenet-200 from
│                             http://cs231n.stanford.edu/tiny-imagenet-200.zip)
├── wnids.txt                one wnid per line; its order is the class order
├── words.txt                "<wnid>\\t<name>, <synonym>, ..." lines
├── train/<wnid>/images/     <wnid>_<i>.JPEG, for every wnid in wnids.txt
└── val/
    ├── images/              val_<i>.JPEG
    └── val_annotations.txt  "<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>"
                             lines, one per val image"""


@DATASETS.register_module()
class TinyImageNet(BaseDataset):
    """`Tiny ImageNet <http://cs231n.stanford.edu/>`_: 200 classes of 64x64
    JPEG images (500 train and 50 val images per class).

    Reads the extracted ``tiny-imagenet-200`` folder as distributed (see
    ``EXPECTED_LAYOUT``); the unlabeled ``test`` split is not supported.
    Class indices follow the order of ``wnids.txt``. Class names are the
    first synonym of each wnid in ``words.txt`` (``'goldfish'`` for
    ``'goldfish, Carassius auratus'``), short enough for logs and plots;
    the wnids themselves are kept in ``metainfo['wnids']``.

    Data infos hold ``img_path`` and ``gt_label``; decode images in the
    pipeline with ``LoadImageFromFile``.

    Args:
        data_root (str): The extracted ``tiny-imagenet-200`` folder.
        split (str): ``'train'`` or ``'val'``. Defaults to ``'train'``.
        **kwargs: Other arguments of
            :class:`mmpretrain.datasets.base_dataset.BaseDataset` except
            ``ann_file``.

    Raises:
        ValueError: If ``split`` is unknown or ``data_root`` is empty.
        FileNotFoundError: If part of the expected layout is missing.
    """

    SPLITS = ('train', 'val')

    def __init__(self, data_root: str, split: str = 'train', **kwargs) -> None:
        if split not in self.SPLITS:
            raise UserValueError(
                f'split must be one of {self.SPLITS}, got {split!r}.')
        if not data_root:
            raise UserValueError(
                'TinyImageNet needs data_root, the extracted '
                f'tiny-imagenet-200 folder:\n{EXPECTED_LAYOUT}')
        self.split = split
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read wnids, class names and the image list of ``self.split``.

        Returns:
            list[dict]: One ``dict(img_path=str, gt_label=int)`` per image.
        """
        wnids = self._read_lines('wnids.txt')
        names = self._read_class_names(wnids)
        self._metainfo.setdefault('classes', tuple(names[w] for w in wnids))
        self._metainfo.setdefault('wnids', tuple(wnids))
        label_of = {wnid: label for label, wnid in enumerate(wnids)}
        if self.split == 'train':
            samples = self._train_samples(wnids)
        else:
            samples = self._val_samples()
        data_list = []
        for img_path, wnid in samples:
            if wnid not in label_of:
                raise UserValueError(
                    f'{img_path} is labelled {wnid!r}, which is not in '
                    f'{self._path("wnids.txt")}.')
            data_list.append(dict(img_path=img_path, gt_label=label_of[wnid]))
        return data_list

    def prepare_data(self, idx: int):
        """The pipeline's output for ``idx``; a file that does not decode
        as an image (truncated, damaged) is named in one line."""
        try:
            return super().prepare_data(idx)
        except Exception:
            path = self.get_data_info(idx)['img_path']
            try:
                readable = mmcv.imfrombytes(get(path)) is not None
            except Exception:
                readable = False
            if readable:
                raise  # the image is fine: the pipeline's own error
            raise UserValueError(
                f'{path} is damaged: it does not decode as an image. Extract '
                'tiny-imagenet-200.zip into data_root again.') from None

    def _path(self, *parts: str) -> str:
        """Join ``parts`` onto ``data_root``."""
        return join_path(self.data_root, *parts)

    def _require(self, path: str, is_dir: bool = False) -> str:
        """Return ``path`` or raise an error that shows the whole layout."""
        if not (isdir(path) if is_dir else exists(path)):
            kind = 'folder' if is_dir else 'file'
            raise FileNotFoundError(
                f'Tiny ImageNet {kind} not found: {path}\nExpected the '
                f'layout of the original archive:\n{EXPECTED_LAYOUT}')
        return path

    def _read_lines(self, *parts: str) -> List[str]:
        """Non-empty, stripped lines of a required text file."""
        text = get_text(self._require(self._path(*parts)))
        return [line.strip() for line in text.splitlines() if line.strip()]

    def _read_class_names(self, wnids: List[str]) -> Dict[str, str]:
        """Map every wnid in ``wnids`` to its first name in words.txt."""
        names = {}
        for line in self._read_lines('words.txt'):
            wnid, _, words = line.partition('\t')
            names[wnid] = words.split(',')[0].strip()
        unnamed = [wnid for wnid in wnids if wnid not in names]
        if unnamed:
            raise UserValueError(f'{self._path("words.txt")} has no names for '
                                 f'{unnamed}.')
        return names

    def _train_samples(self, wnids: List[str]) -> List[Tuple[str, str]]:
        """``(img_path, wnid)`` of every train image, sorted per class."""
        samples = []
        for wnid in wnids:
            folder = self._require(
                self._path('train', wnid, 'images'), is_dir=True)
            files = sorted(
                list_dir_or_file(
                    folder, list_dir=False, suffix=IMAGE_SUFFIXES))
            if not files:
                raise FileNotFoundError(
                    f'No images in {folder}; expected the layout of the '
                    f'original archive:\n{EXPECTED_LAYOUT}')
            samples += [(join_path(folder, name), wnid) for name in files]
        return samples

    def _val_samples(self) -> List[Tuple[str, str]]:
        """``(img_path, wnid)`` of every line of val_annotations.txt."""
        folder = self._require(self._path('val', 'images'), is_dir=True)
        samples = []
        for line in self._read_lines('val', 'val_annotations.txt'):
            file_name, wnid = line.split('\t')[:2]
            samples.append((join_path(folder, file_name), wnid))
        return samples
