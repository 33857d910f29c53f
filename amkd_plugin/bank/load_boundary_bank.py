# Copyright (c) amkd-mmrazor contributors.
"""Load an image's precomputed boundary sample from a boundary bank."""
from typing import Optional

from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from amkd_plugin.utils import UserValueError
from .bank_file import BoundaryBankFile


@TRANSFORMS.register_module()
class LoadBoundaryBank(BaseTransform):
    """Add the banked boundary sample of ``results['sample_idx']``.

    ``BoundaryBankHook`` puts one into the train pipeline of a
    ``BankedBoundary`` before training (after the transforms that load
    ``img``; ``PackInputs`` then packs :attr:`PACKED`) and binds it to the
    bank, so a dataset config needs no pipeline of its own for AMKD. A
    pipeline may also list it itself, e.g. before a transform that augments
    the banked image too (``configs/experiments/sources/bank_crop.py``).
    Without a bank bound it passes the results through unchanged.

    Of the K boundary images banked for the index, one is drawn with
    probability proportional to the teacher's probability of its target
    (see :meth:`BoundaryBankFile.sample`). The draw uses numpy's global
    random state, which MMEngine seeds in every dataloader worker from the
    run seed (``worker_init_fn``), so draws differ between workers and
    epochs yet a seeded run is reproducible; like the random crops.

    Put it after the transform that loads ``img`` and before a
    ``TransformBroadcaster`` that applies the random transforms to ``img``
    and ``boundary_img`` with shared random parameters.

    The bank is opened lazily on first use, so each dataloader worker maps
    the files itself; the open bank is not pickled to spawned workers.
    Persistent workers copy the transform when they start, so :meth:`bind`
    must come before the first training iteration.

    **Required Keys:**

    - img
    - sample_idx

    **Added Keys:**

    - boundary_img (np.ndarray): ``(H, W, C)`` float32 pixels in 0..255,
      in ``img``'s channel order (C = 1 for a 2-D grey ``img``).
    - boundary_logits (np.ndarray): ``(classes,)`` float32, the teacher's
      logits on ``boundary_img`` as banked.
    - boundary_target (int)
    - boundary_correct (bool)
    - boundary_reached (bool)

    Args:
        bank_path (str, optional): The boundary bank directory. Usually
            left None and set by ``BoundaryBankHook`` through :meth:`bind`.
            Defaults to None (pass through).
    """

    # The fields of a banked sample used as banked, for PackInputs.
    PACKED = ('boundary_img', 'boundary_target', 'boundary_correct',
              'boundary_reached', 'boundary_logits')

    def __init__(self, bank_path: Optional[str] = None) -> None:
        super().__init__()
        self.bank_path = bank_path
        self._bank: Optional[BoundaryBankFile] = None

    def bind(self, bank_path: Optional[str]) -> None:
        """Use the bank at ``bank_path`` from now on (None unbinds).

        Args:
            bank_path (str, optional): The boundary bank directory.
        """
        self.bank_path = bank_path
        self._bank = None

    def transform(self, results: dict) -> dict:
        """Add the boundary sample fields.

        Args:
            results (dict): Result dict with ``img`` and ``sample_idx``.

        Returns:
            dict: ``results`` with the boundary fields added, or as they
            were without a bank bound.
        """
        if self.bank_path is None:
            return results
        if self._bank is None:  # opened in each dataloader worker
            self._bank = BoundaryBankFile.open(self.bank_path)
        bank = self._bank
        img_shape = tuple(results['img'].shape)
        # PackInputs serves a 2-D grey image as one channel, as banked.
        if len(img_shape) == 2:
            img_shape += (1, )
        if img_shape != bank.image_shape:
            raise UserValueError(
                f'The image of sample {results["sample_idx"]} has shape '
                f'{img_shape} but boundary bank {bank.path} stores '
                f'{bank.image_shape}: the bank was built with another '
                f'loading pipeline or dataset.')
        results.update(bank.sample(results['sample_idx']))
        return results

    def __getstate__(self) -> dict:
        # Pickling a memory map would copy the whole array into the pickle;
        # each process opens its own instead.
        state = self.__dict__.copy()
        state['_bank'] = None
        return state

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(bank_path={self.bank_path!r})'
