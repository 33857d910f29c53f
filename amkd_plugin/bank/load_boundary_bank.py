# Copyright (c) amkd-mmrazor contributors.
"""Keep what a boundary bank needs of an image, or load its banked sample."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from amkd_plugin.utils import UserValueError
from .bank_file import BankReader


@TRANSFORMS.register_module()
class LoadBoundaryBank(BaseTransform, BankReader):
    """Keep the clean image for the banked boundary sample of
    ``results['sample_idx']``, or load that sample.

    ``BoundaryBankHook`` puts one into the train pipeline of a
    ``BankedBoundary`` before training (after the transforms that load
    ``img``; ``PackInputs`` then packs :attr:`PACKED`) and binds it to the
    bank, so a dataset config needs no pipeline of its own for AMKD.
    Without a bank bound it passes the results through unchanged.

    A bank stores what the attack changed in the clean image. By default
    this transform reads nothing from it: it keeps a copy of the clean,
    un-augmented image as ``boundary_clean``, and ``BankedBoundary`` reads
    the banked rows of only the samples its step selects (a quarter of a
    batch by default) and adds their change to it.

    With ``decode=True`` it loads the banked sample here instead, for a
    pipeline that moves it with the image: listed before a
    ``TransformBroadcaster`` that applies the random transforms to ``img``
    and ``boundary_img`` with shared parameters
    (``configs/experiments/sources/bank_crop.py``). That reads every
    image's banked sample each epoch. Of the K boundary images banked for
    the index, one is drawn with probability proportional to the teacher's
    probability of its target (:meth:`BoundaryBankFile.draw`), from
    numpy's global random state, which MMEngine seeds in every dataloader
    worker from the run seed, so draws differ between workers and epochs
    yet a seeded run is reproducible.

    The bank is opened lazily on first use, so each dataloader worker maps
    the files itself; the open bank is not pickled to spawned workers.
    Persistent workers copy the transform when they start, so :meth:`bind`
    must come before the first training iteration.

    **Required Keys:**

    - img
    - sample_idx

    **Added Keys** (``decode=False``):

    - boundary_clean (np.ndarray): ``(H, W, C)`` copy of ``img`` (C = 1
      for a 2-D grey ``img``), as loaded.

    **Added Keys** (``decode=True``):

    - boundary_img (np.ndarray): ``(H, W, C)`` float32 pixels in 0..255,
      in ``img``'s channel order.
    - boundary_logits (np.ndarray): ``(classes,)`` float32, the teacher's
      logits on ``boundary_img`` as banked.
    - boundary_target (int)
    - boundary_correct (bool)
    - boundary_reached (bool)

    Args:
        bank_path (str, optional): The boundary bank directory. Usually
            left None and set by ``BoundaryBankHook`` through :meth:`bind`.
            Defaults to None (pass through).
        decode (bool): Load the banked sample in the pipeline. Defaults to
            False.
    """

    # The fields PackInputs packs, for each ``decode``.
    PACKED = ('boundary_clean', )
    DECODED = ('boundary_img', 'boundary_target', 'boundary_correct',
               'boundary_reached', 'boundary_logits')

    def __init__(self,
                 bank_path: Optional[str] = None,
                 decode: bool = False) -> None:
        super().__init__()
        self.bind(bank_path)
        self.decode = decode

    def transform(self, results: dict) -> dict:
        """Add the boundary fields.

        Args:
            results (dict): Result dict with ``img`` and ``sample_idx``.

        Returns:
            dict: ``results`` with the boundary fields added, or as they
            were without a bank bound.
        """
        if self.bank_path is None:
            return results
        bank = self.bank
        img = results['img']
        # PackInputs serves a 2-D grey image as one channel, as banked.
        clean = img[..., None] if img.ndim == 2 else img
        if clean.shape != bank.image_shape:
            raise UserValueError(
                f'The image of sample {results["sample_idx"]} has shape '
                f'{clean.shape} but boundary bank {bank.path} stores '
                f'{bank.image_shape}: the bank was built with another '
                f'loading pipeline or dataset.')
        if self.decode:
            results.update(bank.sample(results['sample_idx'], clean))
        else:
            # A copy: the augmentations after this may work in place.
            results['boundary_clean'] = np.array(clean)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(bank_path={self.bank_path!r}, '
                f'decode={self.decode})')
