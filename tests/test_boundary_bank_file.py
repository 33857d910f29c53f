# Copyright (c) amkd-mmrazor contributors.
"""Boundary bank files, LoadBoundaryBank and the banked train pipelines.

A bank (format 5) stores what the attack changed in each clean image, in
6-bit levels with a scale per sample, and a checksum of that clean image.
The dataset configs have one train pipeline; for a bank,
``BoundaryBankHook`` puts a ``LoadBoundaryBank`` into it
(``add_bank_loader``), which keeps a copy of the clean image as loaded
(``boundary_clean``) once a bank is bound, for the step to add the banked
change to, and passes the images through without one. The cropping variant
decodes the banked sample in the pipeline instead: the config fragment
``configs/experiments/sources/bank_crop.py`` (digits only).
"""
import json
import multiprocessing
import os
import pickle
import re
import shutil
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.datasets.transforms import PackInputs
from mmpretrain.registry import DATASETS, TRANSFORMS

from amkd_plugin.bank import (BoundaryBankFile, LoadBoundaryBank,
                              add_bank_loader)
from amkd_plugin.bank.bank_file import (FORMAT_VERSION, LEVELS, checksum,
                                        decode, draw_targets, encode, pack,
                                        unpack)
from amkd_plugin.utils import UserValueError
from amkd_plugin.utils.fragments import merge_fragments

REPO = Path(__file__).parents[1]
CONFIG_DIR = REPO / 'configs' / '_base_' / 'datasets'
SCOPES = ('mmpretrain', 'mmrazor')
SHAPE = (32, 32, 3)
CLASSES = 7  # the teacher's class count C
# The train pipeline with the LoadBoundaryBank the bank hook adds.
AMKD = 'banked'
# The banked image with the clean image's random crop: a config fragment
# for the digits pairs (the dataset configs have no such pipeline).
CROP = 'bank_crop'
CROP_FRAGMENT = REPO / 'configs/experiments/sources/bank_crop.py'
DIGITS_PAIR = REPO / 'configs/amkd/resnet20_resnet8_digits.py'
PIPELINES = (AMKD, CROP)
# What the hook's pipeline packs: the clean image, which the step adds the
# banked change of the samples it selects to.
CLEAN_KEYS = ['boundary_clean']
BANK_KEYS = [
    'boundary_img', 'boundary_target', 'boundary_correct', 'boundary_reached'
]
# As banked, the teacher's logits on the banked image hold; not after a crop.
AS_BANKED_KEYS = [*BANK_KEYS, 'boundary_logits']
# Every file of a bank (format 5): no images, only the change to them.
BANK_FILES = [
    'checksum.npy', 'correct.npy', 'delta.npy', 'logits.npy', 'meta.json',
    'reached.npy', 'scale.npy', 'steps.npy', 'targets.npy', 'weights.npy'
]
# How far the banked images of the tests move their clean image (pixel
# values, see away()): LEVELS times a power of two, so the scale (4 and
# 2) and the decoded image are exact floats.
BY = (4.0 * LEVELS, 2.0 * LEVELS)
# Value added to the clean gradient image to make the banked image: LEVELS,
# a scale of exactly 1, so the decoded image is exactly clean + OFFSET.
OFFSET = LEVELS
# Bound on the float32 rounding of an encode/decode round trip beyond the
# scale / 2 of the levels: four roundings (the change, the quotient by the
# scale, its product with the level and the sum with the clean pixel) of
# half a float32 step of a value of at most 255 each (the quotient's is
# half a step of LEVELS levels, times a scale of at most 255 / LEVELS).
ROUNDING = 2 * float(np.spacing(np.float32(255)))


def away(clean: np.ndarray, by: float) -> np.ndarray:
    """``clean`` moved ``by`` pixel values away from its nearer end of
    0..255 (up if below 128, else down), as float32.

    Every pixel changes by exactly ``by`` <= 127, within 0..255, so
    :func:`encode` stores levels of +-LEVELS with scale ``by / LEVELS``
    and, for
    :data:`BY`, :func:`decode` gives this image back exactly.
    """
    clean = clean.astype(np.float32)
    return clean + np.where(clean < 128, by, -by).astype(np.float32)


def random_rows(num: int, num_targets: int, seed: int = 0) -> dict:
    """Random arrays for every argument of :meth:`BoundaryBankFile.write`
    for ``num`` bank rows (``clean`` is stored as its checksum only)."""
    rng = np.random.default_rng(seed)
    return dict(
        delta=rng.integers(-LEVELS, LEVELS + 1, (num, num_targets) + SHAPE,
                           dtype=np.int8),
        scale=(2 * rng.random((num, num_targets), np.float32)),
        clean=rng.integers(0, 256, (num, ) + SHAPE, dtype=np.uint8),
        logits=rng.normal(0, 5, (num, num_targets, CLASSES)).astype(
            np.float32),
        targets=rng.integers(0, 100, (num, num_targets)),
        weights=rng.random((num, num_targets), np.float32),
        correct=rng.random(num) < 0.5,
        reached=rng.random((num, num_targets)) < 0.5,
        steps=rng.integers(0, 10, (num, num_targets)).astype(np.int16))


def rows_at(rows: dict, indices: np.ndarray) -> dict:
    return {name: value[indices] for name, value in rows.items()}


def build_bank(path: Path,
               images: np.ndarray,
               weights: Optional[np.ndarray] = None,
               clean: Optional[np.ndarray] = None,
               logits: Optional[np.ndarray] = None) -> BoundaryBankFile:
    """Commit a bank of ``images`` (N, K, H, W, C) pixel values made from
    ``clean`` (N, H, W, C; zeros by default), stored as their encoded
    change (:func:`encode`); targets are ``10 * k``, logits zeros by
    default."""
    num, num_targets = images.shape[:2]
    if clean is None:
        clean = np.zeros((num, ) + images.shape[2:], np.uint8)
    delta, scale = encode(images, clean[:, None])
    rows = dict(
        delta=delta,
        scale=scale,
        clean=clean,
        logits=(np.zeros((num, num_targets, CLASSES), np.float32)
                if logits is None else logits),
        targets=np.tile(10 * np.arange(num_targets), (num, 1)),
        weights=(np.ones(
            (num, num_targets), np.float32) if weights is None else weights),
        correct=np.ones(num, bool),
        reached=np.ones((num, num_targets), bool),
        steps=np.full((num, num_targets), 3, np.int16))
    bank = BoundaryBankFile.create(
        str(path), num, num_targets, images.shape[2:], CLASSES,
        meta={'test': 1})
    bank.write(np.arange(num), **rows)
    return bank.commit()


def _write_shard(partial_path: str, starts: list, rows: dict) -> None:
    """Another rank: a shard of its own for its batches (of 2), written
    and recorded."""
    shard = BoundaryBankFile.create_shard(partial_path, 'rank1', starts, 2)
    for start in starts:
        indices = np.arange(start, min(start + 2, 9))
        shard.write(indices, **rows_at(rows, indices))
    shard.save_progress(dict(starts=starts))


# --- encoding, checksums and target draws --------------------------------


def test_encode_decode_round_trip_within_half_a_level():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (4, ) + SHAPE, dtype=np.uint8)
    images = rng.uniform(0, 255, (4, 3) + SHAPE).astype(np.float32)
    # Small changes too, whose levels are much finer than a pixel value.
    images[:, 2] = np.clip(clean + rng.uniform(-2, 2, (4, ) + SHAPE), 0,
                           255).astype(np.float32)
    delta, scale = encode(images, clean[:, None])
    assert delta.dtype == np.int8 and delta.shape == images.shape
    assert scale.dtype == np.float32 and scale.shape == (4, 3)

    change = images.astype(np.float64) - clean[:, None]
    largest = np.abs(change).max(axis=(2, 3, 4))
    # scale = the largest change over LEVELS, to float32 precision.
    np.testing.assert_allclose(scale, largest / LEVELS, rtol=2**-22)
    assert np.abs(delta.astype(int)).max() == LEVELS
    # The largest change of each sample takes the outermost level.
    np.testing.assert_array_equal(
        np.abs(delta.astype(int)).max(axis=(2, 3, 4)), LEVELS)

    decoded = decode(clean[:, None], delta, scale)
    assert decoded.dtype == np.float32 and decoded.shape == images.shape
    error = np.abs(decoded.astype(np.float64) - images)
    bound = scale.astype(np.float64)[..., None, None, None] / 2 + ROUNDING
    assert (error <= bound).all(), (error - bound).max()
    # The bound is the levels' rounding, not slack: it is nearly reached.
    assert (error.max(axis=(2, 3, 4)) > 0.99 * scale / 2).all()


def test_encode_exact_changes_decode_exactly():
    rng = np.random.default_rng(1)
    clean = rng.integers(0, 256, (2, ) + SHAPE, dtype=np.uint8)
    # Integer changes of at most LEVELS within 0..255, reaching LEVELS
    # (which every pixel value can): a scale of exactly 1, levels = the
    # change.
    change = np.clip(rng.integers(-LEVELS, LEVELS + 1, (2, ) + SHAPE),
                     -clean.astype(int), 255 - clean.astype(int))
    change[:, 0, 0, 0] = np.where(clean[:, 0, 0, 0] <= 128, LEVELS, -LEVELS)
    images = (clean + change).astype(np.float32)
    delta, scale = encode(images, clean)
    np.testing.assert_array_equal(scale, [1, 1])
    np.testing.assert_array_equal(delta, change)
    np.testing.assert_array_equal(decode(clean, delta, scale), images)
    # A change of BY everywhere: levels +-LEVELS of a scale BY / LEVELS.
    for by in BY:
        moved = away(clean, by)
        delta, scale = encode(moved, clean)
        np.testing.assert_array_equal(scale, by / LEVELS)
        np.testing.assert_array_equal(np.abs(delta.astype(int)), LEVELS)
        np.testing.assert_array_equal(decode(clean, delta, scale), moved)


def test_encode_unchanged_image_has_scale_zero():
    rng = np.random.default_rng(2)
    clean = rng.integers(0, 256, (2, ) + SHAPE, dtype=np.uint8)
    images = clean[:, None].repeat(2, 1).astype(np.float32)
    images[1, 1] = away(clean[1], BY[0])
    # No 0 / 0 for the unchanged samples (it would raise here).
    with np.errstate(all='raise'):
        delta, scale = encode(images, clean[:, None])
    np.testing.assert_array_equal(scale, [[0, 0], [0, BY[0] / LEVELS]])
    assert not delta[0].any() and not delta[1, 0].any()
    decoded = decode(clean[:, None], delta, scale)
    np.testing.assert_array_equal(decoded[0, 0], clean[0])
    np.testing.assert_array_equal(decoded[1, 0], clean[1])
    np.testing.assert_array_equal(decoded[1, 1], images[1, 1])


def test_decode_clips_to_pixel_range():
    clean = np.array([[[[250, 5, 100]]]], np.uint8)  # (1, 1, 1, 3)
    delta = np.array([[[[127, -127, 127]]]], np.int8)
    decoded = decode(clean, delta, np.array([1], np.float32))
    # 250 + 127 and 5 - 127 leave 0..255; 100 + 127 stays.
    np.testing.assert_array_equal(decoded, [[[[255, 0, 227]]]])
    assert decoded.dtype == np.float32


def test_pack_stores_six_bits_a_level_big_endian():
    # Levels -31, 0, 31, 1 are 0, 31, 62, 32 above -31: 000000 011111
    # 111110 100000, three bytes.
    delta = np.array([-31, 0, 31, 1], np.int8).reshape(1, 2, 2, 1)
    packed = pack(delta)
    assert packed.tolist() == [[0b00000001, 0b11111111, 0b10100000]]
    np.testing.assert_array_equal(unpack(packed, (2, 2, 1)), delta)


def test_pack_round_trips_every_level_and_pads_to_a_byte():
    rng = np.random.default_rng(4)
    # 5 values: 30 bits in 4 bytes, the last 2 bits padding.
    delta = rng.integers(-LEVELS, LEVELS + 1, (3, 2, 5, 1, 1)).astype(
        np.int8)
    delta[0, 0, :, 0, 0] = [-LEVELS, -1, 0, 1, LEVELS]
    packed = pack(delta)
    assert packed.shape == (3, 2, 4) and packed.dtype == np.uint8
    assert not (packed[..., -1] & 0b11).any()
    np.testing.assert_array_equal(unpack(packed, (5, 1, 1)), delta)
    # A bank of every level and random ones reads back the same.
    big = rng.integers(-LEVELS, LEVELS + 1, (4, 1) + SHAPE).astype(np.int8)
    np.testing.assert_array_equal(unpack(pack(big), SHAPE), big)


def test_checksum_is_crc32_of_each_image():
    rng = np.random.default_rng(3)
    clean = rng.integers(0, 256, (3, ) + SHAPE, dtype=np.uint8)
    sums = checksum(clean)
    assert sums.dtype == np.uint32 and sums.shape == (3, )
    assert sums.tolist() == [zlib.crc32(image.tobytes()) for image in clean]
    # A view (e.g. a flip undone) sums its pixels, not its memory layout.
    flipped = np.ascontiguousarray(clean[:, :, ::-1])
    np.testing.assert_array_equal(checksum(flipped[:, :, ::-1]), sums)
    # One pixel value off by one changes it.
    clean[1, 5, 6, 2] ^= 1
    changed = checksum(clean)
    assert changed[1] != sums[1]
    np.testing.assert_array_equal(changed[[0, 2]], sums[[0, 2]])


def test_draw_targets_inverts_cumulative_weights():
    draws = np.array([0, 0.25, 0.5, 0.999])
    for weights, expected in [((1, 0, 0), 0), ((0, 0, 1), 2),
                              ((0, 1, 0), 1), ((-1, 0, 2), 2)]:
        rows = np.tile(np.array(weights, np.float32), (len(draws), 1))
        np.testing.assert_array_equal(
            draw_targets(rows, draws), expected, err_msg=str(weights))
    # Weights 1, 2, 1 (sum 4): [0, 0.25) -> 0, [0.25, 0.75) -> 1, the rest
    # 2; each boundary times 4 is exact.
    weights = np.array([[1, 2, 1]], np.float32)
    at = np.array([0, 0.2499, 0.25, 0.5, 0.7499, 0.75, 0.999999])
    chosen = draw_targets(np.repeat(weights, len(at), 0), at)
    assert chosen.dtype == np.int64
    assert chosen.tolist() == [0, 0, 1, 1, 1, 2, 2]
    # Only the ratios count.
    np.testing.assert_array_equal(
        draw_targets(np.repeat(3 * weights, len(at), 0), at), chosen)
    # Evenly spread draws hit each target in proportion, exactly.
    grid = (np.arange(1000) + 0.5) / 1000
    counts = np.bincount(draw_targets(np.repeat(weights, 1000, 0), grid))
    assert counts.tolist() == [250, 500, 250]
    # All-zero weights: uniform by the draw (K = 4: quarters).
    zero = np.zeros((8, 4), np.float32)
    quarters = np.array([0, 0.2, 0.25, 0.4, 0.5, 0.7, 0.75, 0.99])
    assert draw_targets(zero, quarters).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    # Rows are independent of each other.
    mixed = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]], np.float32)
    assert draw_targets(mixed, np.array([0.9, 0.6, 0.1])).tolist() == [
        0, 2, 3]


def test_draw_uses_the_banked_weights(tmp_path):
    weights = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], np.float32)
    bank = build_bank(tmp_path / 'bank', np.zeros((3, 3) + SHAPE), weights)
    draws = np.array([0.9, 0.1, 0.5, 0.4])
    assert bank.draw(np.array([0, 1, 2, 2]), draws).tolist() == [0, 2, 1, 1]
    with pytest.raises(IndexError, match='another dataset'):
        bank.draw(np.array([0, 3]), np.zeros(2))
    single = build_bank(tmp_path / 'single', np.zeros((2, 1) + SHAPE),
                        np.zeros((2, 1), np.float32))
    result = single.draw(np.array([1, 0, 1]), np.array([0.9, 0.5, 0.1]))
    assert result.dtype == np.int64 and result.tolist() == [0, 0, 0]


# --- BoundaryBankFile --------------------------------------------------


def test_two_writers_round_trip(tmp_path):
    """Two processes, each writing its batches into a shard of its own;
    the commit copies the recorded batches into the bank."""
    path = str(tmp_path / 'bank')
    num, num_targets = 9, 3  # batches of 2 at 0, 2, 4, 6 and 8 (short)
    rows = random_rows(num, num_targets)
    bank = BoundaryBankFile.create(
        path, num, num_targets, SHAPE, CLASSES, meta={'teacher': 'resnet'})
    partial = bank.partial_path
    # "Rank 1" is a real second process with its own files.
    proc = multiprocessing.get_context('fork').Process(
        target=_write_shard, args=(partial, [2, 6], rows))
    proc.start()
    shard = BoundaryBankFile.create_shard(partial, 'rank0', [0, 4, 8], 2)
    for start in (0, 4, 8):
        indices = np.arange(start, min(start + 2, num))
        shard.write(indices, **rows_at(rows, indices))
    with pytest.raises(ValueError, match='not in a batch of shard'):
        shard.write(np.arange(2, 4), **rows_at(rows, np.arange(2, 4)))
    shard.save_progress(dict(starts=[0, 4, 8]))
    proc.join()
    assert proc.exitcode == 0
    assert [(r['shard'], r['starts']) for r in bank.progress()] == [
        ('shard-rank0', [0, 4, 8]), ('shard-rank1', [2, 6])]
    committed = bank.commit()

    assert not os.path.exists(partial)
    assert BoundaryBankFile.exists(path)
    assert sorted(os.listdir(path)) == BANK_FILES
    with open(os.path.join(path, 'meta.json')) as f:
        assert json.load(f)['format_version'] == FORMAT_VERSION == 5
    stored = {name: value for name, value in rows.items() if name != 'clean'}
    stored['delta'] = pack(rows['delta'])
    for opened in (committed, BoundaryBankFile.open(path)):
        assert (opened.num, opened.num_targets) == (num, num_targets)
        assert opened.image_shape == SHAPE
        assert opened.meta == {'teacher': 'resnet'}
        assert opened.build == {}
        for name, value in stored.items():
            np.testing.assert_array_equal(opened[name], value, err_msg=name)
            assert opened[name].dtype == value.dtype
        np.testing.assert_array_equal(
            opened.levels(np.arange(num), np.zeros(num, int)),
            rows['delta'][:, 0])
        np.testing.assert_array_equal(opened['checksum'],
                                      checksum(rows['clean']))
        assert opened['checksum'].dtype == np.uint32
        assert not opened['delta'].flags.writeable


def test_write_checks_shapes_and_dtype(tmp_path):
    bank = BoundaryBankFile.create(str(tmp_path / 'bank'), 4, 2, SHAPE,
                                   CLASSES)
    rows = rows_at(random_rows(4, 2), np.arange(2))
    with pytest.raises(ValueError, match='targets must have shape'):
        bank.write(np.arange(2), **{**rows, 'targets': rows['targets'][:1]})
    with pytest.raises(ValueError, match=r'delta must have shape'):
        bank.write(np.arange(2), **{**rows, 'delta': rows['delta'][:, :1]})
    with pytest.raises(ValueError, match='must have shape'):
        bank.write(np.arange(2), **{**rows, 'clean': rows['clean'][:1]})
    # A cast would wrap levels around or round a sample off the boundary.
    with pytest.raises(TypeError, match='delta must be int8'):
        bank.write(
            np.arange(2), **{
                **rows, 'delta': rows['delta'].astype(np.float32)
            })
    with pytest.raises(TypeError, match='delta must be int8'):
        bank.write(
            np.arange(2), **{
                **rows, 'delta': rows['delta'].astype(np.int16)
            })
    # A level past +-LEVELS would not fit in its bits.
    with pytest.raises(ValueError, match='delta must be within'):
        bank.write(np.arange(2), **{
            **rows, 'delta': np.full_like(rows['delta'], LEVELS + 1)
        })
    with pytest.raises(TypeError, match='scale must be float32'):
        bank.write(
            np.arange(2), **{
                **rows, 'scale': rows['scale'].astype(np.float64)
            })
    # Each bad call was refused before it wrote anything: still zeros.
    for name in ('delta', 'scale', 'checksum', 'logits', 'targets',
                 'weights', 'correct', 'reached', 'steps'):
        assert not np.any(bank[name]), name
    bank.write(np.arange(2), **rows)
    np.testing.assert_array_equal(unpack(bank['delta'][:2], SHAPE),
                                  rows['delta'])


def test_uncommitted_bank_is_not_complete(tmp_path):
    path = tmp_path / 'bank'
    num = 4
    bank = BoundaryBankFile.create(str(path), num, 1, SHAPE, CLASSES)
    bank.write(np.arange(num), **random_rows(num, 1))
    bank.flush()
    partial = bank.partial_path

    assert not BoundaryBankFile.exists(str(path))
    assert not BoundaryBankFile.exists(partial)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        BoundaryBankFile.open(str(path))
    with pytest.raises(FileNotFoundError, match='half-written'):
        BoundaryBankFile.open(partial)
    # A crash while copying a bank by hand: arrays but no meta.json.
    shutil.copytree(partial, path)
    with pytest.raises(FileNotFoundError, match='half-written'):
        BoundaryBankFile.open(str(path))
    with pytest.raises(FileExistsError, match='no complete boundary bank'):
        bank.commit()


def truncate(file: Path, keep: float) -> None:
    data = file.read_bytes()
    file.write_bytes(data[:int(len(data) * keep)])


def set_format_version(path: Path, version: int) -> None:
    meta = json.loads((path / 'meta.json').read_text())
    (path / 'meta.json').write_text(json.dumps(dict(meta,
                                                    format_version=version)))


@pytest.mark.parametrize('damage, what', [
    (lambda p: truncate(p / 'delta.npy', 0.5), r'delta\.npy cannot be '
     r'mapped'),
    (lambda p: truncate(p / 'weights.npy', 0.01), r'weights\.npy cannot be '
     r'mapped'),
    (lambda p: truncate(p / 'meta.json', 0.5), r'meta\.json is not JSON'),
    (lambda p: (p / 'steps.npy').unlink(), r'steps\.npy is missing'),
    (lambda p: (p / 'checksum.npy').unlink(), r'checksum\.npy is missing'),
    (lambda p: np.save(p / 'targets.npy', np.zeros((4, 3), np.int64)),
     r'targets\.npy is int64\(4, 3\), expected int64\(4, 2\)'),
    (lambda p: np.save(p / 'weights.npy', np.zeros((4, 2), np.float64)),
     r'weights\.npy is float64\(4, 2\), expected float32\(4, 2\)'),
    # Format 4's int8 change where the packed 6-bit levels belong.
    (lambda p: np.save(p / 'delta.npy', np.zeros((4, 2) + SHAPE, np.int8)),
     r'delta\.npy is int8\(4, 2, 32, 32, 3\), expected '
     r'uint8\(4, 2, 2304\)'),
    (lambda p: set_format_version(p, 4),
     'it has format version 4 and this code reads 5'),
])
def test_open_names_a_damaged_bank(tmp_path, damage, what):
    path = tmp_path / 'bank'
    build_bank(path, np.zeros((4, 2) + SHAPE, np.float32))
    damage(path)
    with pytest.raises(UserValueError, match=what) as info:
        BoundaryBankFile.open(str(path))
    message = str(info.value)
    assert message.startswith(f'Boundary bank {path} is damaged: ')
    assert 'tools/build_boundary_bank.py' in message and '\n' not in message


def test_concurrent_commit_keeps_first_bank(tmp_path):
    path = str(tmp_path / 'bank')
    first = BoundaryBankFile.create(path, 2, 1, SHAPE, CLASSES,
                                    meta={'who': 1})
    second = BoundaryBankFile.create(path, 2, 1, SHAPE, CLASSES,
                                     meta={'who': 2})
    assert first.partial_path != second.partial_path
    second_partial = second.partial_path
    assert first.commit().meta == {'who': 1}
    assert second.commit().meta == {'who': 1}
    assert not os.path.exists(second_partial)
    assert BoundaryBankFile.open(path).meta == {'who': 1}


def test_read_gives_the_selected_rows(tmp_path):
    rng = np.random.default_rng(4)
    clean = rng.integers(0, 256, (3, ) + SHAPE, dtype=np.uint8)
    images = np.stack([away(clean, by) for by in BY], 1)
    logits = np.arange(3 * 2 * CLASSES, dtype=np.float32).reshape(
        3, 2, CLASSES)
    bank = build_bank(tmp_path / 'bank', images, clean=clean, logits=logits)
    indices, columns = np.array([2, 0, 2]), np.array([1, 0, 0])
    read = bank.read(indices, columns, clean[indices])
    assert sorted(read) == ['images', 'logits', 'reached', 'targets']
    assert read['images'].dtype == np.float32
    assert read['images'].shape == (3, ) + SHAPE
    np.testing.assert_array_equal(read['images'], images[indices, columns])
    np.testing.assert_array_equal(read['logits'], logits[indices, columns])
    assert read['targets'].tolist() == [10, 0, 0]
    assert read['reached'].tolist() == [True] * 3
    # Private, writable copies, not views of the read-only maps.
    for name, value in read.items():
        assert value.flags.writeable and not isinstance(value, np.memmap), \
            name
    # Nothing selected, nothing read.
    empty = bank.read(np.zeros(0, int), np.zeros(0, int),
                      np.zeros((0, ) + SHAPE, np.uint8))
    assert empty['images'].shape == (0, ) + SHAPE


def test_read_rejects_another_clean_image(tmp_path):
    rng = np.random.default_rng(5)
    clean = rng.integers(0, 256, (3, ) + SHAPE, dtype=np.uint8)
    bank = build_bank(tmp_path / 'bank', away(clean, BY[0])[:, None],
                      clean=clean)
    other = clean.copy()
    other[1, 0, 0, 0] ^= 1  # one pixel value off by one
    error = (rf'The image of sample 1 is not the one boundary bank '
             rf'{re.escape(bank.path)} was built from')
    with pytest.raises(UserValueError, match=error):
        bank.read(np.array([0, 1]), np.zeros(2, int), other[:2])
    # Another sample's image, e.g. of a shuffled dataset.
    with pytest.raises(UserValueError, match='sample 2 is not the one'):
        bank.read(np.array([2]), np.zeros(1, int), clean[[0]])
    with pytest.raises(UserValueError,
                       match=r'shape \(28, 28, 3\).*\(32, 32, 3\)'):
        bank.read(np.array([0]), np.zeros(1, int),
                  np.zeros((1, 28, 28, 3), np.uint8))
    for index in (3, -1):
        with pytest.raises(IndexError, match='another dataset'):
            bank.read(np.array([0, index]), np.zeros(2, int), clean[:2])


def test_sample_follows_weights(tmp_path):
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (3, ) + SHAPE, dtype=np.uint8)
    images = np.stack([away(clean, by) for by in BY], 1)
    weights = np.tile(np.array([0.9, 0.1], np.float32), (3, 1))
    weights[2] = 0  # e.g. a teacher that assigns no target probability
    bank = build_bank(tmp_path / 'bank', images, weights, clean)
    draws = [bank.sample(1, clean[1], rng) for _ in range(2000)]
    targets = np.array([d['boundary_target'] for d in draws])
    assert set(targets) == {0, 10}
    # 0.03 is 4.5 standard deviations of a mean of 2000 draws at 0.9.
    assert abs(np.mean(targets == 0) - 0.9) < 0.03
    for draw in draws[:20]:
        np.testing.assert_array_equal(
            draw['boundary_img'], images[1, draw['boundary_target'] // 10])
        assert draw['boundary_correct'] is True
        assert draw['boundary_reached'] is True
    # numpy's global state (what LoadBoundaryBank uses) works as well.
    np.random.seed(0)
    global_targets = [
        bank.sample(0, clean[0])['boundary_target'] for _ in range(2000)
    ]
    assert abs(np.mean(np.array(global_targets) == 0) - 0.9) < 0.03
    # All-zero weights fall back to a uniform draw (0.05: 4.5 deviations).
    zero = [bank.sample(2, clean[2], rng)['boundary_target']
            for _ in range(2000)]
    assert abs(np.mean(np.array(zero) == 0) - 0.5) < 0.05

    # The returned image is a private, writable, contiguous copy.
    img = bank.sample(0, clean[0], rng)['boundary_img']
    assert img.flags.writeable and img.flags.c_contiguous
    assert img.shape == SHAPE and img.dtype == np.float32
    img[:] = 0
    again = bank.sample(0, clean[0], np.random.default_rng(1))
    np.testing.assert_array_equal(
        again['boundary_img'], images[0, again['boundary_target'] // 10])
    with pytest.raises(UserValueError, match='sample 0 is not the one'):
        bank.sample(0, clean[1], rng)
    with pytest.raises(IndexError, match='another dataset'):
        bank.sample(3, clean[0], rng)


def test_sample_single_target(tmp_path):
    clean = np.full((2, ) + SHAPE, 9, np.uint8)
    bank = build_bank(tmp_path / 'bank',
                      away(clean, BY[1])[:, None],
                      np.zeros((2, 1), np.float32), clean)
    rng = np.random.default_rng(0)
    samples = [bank.sample(1, clean[1], rng) for _ in range(50)]
    assert {s['boundary_target'] for s in samples} == {0}
    np.testing.assert_array_equal(samples[0]['boundary_img'], 9 + BY[1])
    # K = 1 makes no draw: the random stream is untouched.
    assert rng.random() == np.random.default_rng(0).random()


# --- LoadBoundaryBank --------------------------------------------------


def test_load_boundary_bank_transform(tmp_path):
    clean = np.stack([np.zeros(SHAPE, np.uint8), np.full(SHAPE, 200,
                                                         np.uint8)])
    path = build_bank(tmp_path / 'bank', away(clean, BY[0])[:, None],
                      clean=clean).path
    results = dict(img=clean[1].copy(), sample_idx=1)
    # Not the image the bank was built from (e.g. another loading).
    wrong = dict(img=clean[0].copy(), sample_idx=1)
    odd = dict(img=np.zeros((28, 28, 3), np.uint8), sample_idx=0)

    transform = TRANSFORMS.build(dict(type='LoadBoundaryBank'))
    assert isinstance(transform, LoadBoundaryBank) and not transform.decode
    assert LoadBoundaryBank.PACKED == tuple(CLEAN_KEYS)
    assert LoadBoundaryBank.DECODED == tuple(AS_BANKED_KEYS)
    # No bank bound (an OnlineBoundary run): the results pass through.
    assert transform(dict(results)) == results
    transform.bind(path)
    # By default it keeps a copy of the clean image and reads no sample.
    out = transform(dict(results))
    assert sorted(out) == sorted([*results, *CLEAN_KEYS])
    assert out['boundary_clean'].dtype == np.uint8
    np.testing.assert_array_equal(out['boundary_clean'], clean[1])
    assert not np.shares_memory(out['boundary_clean'], out['img'])
    # An image the bank was not built from is only caught by the step's
    # read, which checks the checksum of the kept image.
    kept = transform(dict(wrong))['boundary_clean']
    np.testing.assert_array_equal(kept, clean[0])
    with pytest.raises(UserValueError, match='sample 1 is not the one'):
        BoundaryBankFile.open(path).read(
            np.array([1]), np.zeros(1, int), kept[None])
    # The opened memory maps never travel to (spawned) workers.
    assert len(pickle.dumps(transform)) < 1000
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(transform))(
            dict(results))['boundary_clean'], clean[1])
    with pytest.raises(UserValueError, match=r'\(28, 28, 3\).*\(32, 32, 3\)'):
        transform(dict(odd))

    # decode=True loads the banked sample, decoded from the clean image.
    decoding = TRANSFORMS.build(
        dict(type='LoadBoundaryBank', bank_path=path, decode=True))
    assert 'decode=True' in repr(decoding)
    out = decoding(dict(results))
    assert sorted(out) == sorted([*results, *AS_BANKED_KEYS])
    assert out['boundary_img'].dtype == np.float32
    np.testing.assert_array_equal(out['boundary_img'], 200 - BY[0])
    assert out['boundary_target'] == 0
    np.testing.assert_array_equal(out['boundary_logits'], np.zeros(CLASSES))
    error = (rf'The image of sample 1 is not the one boundary bank '
             rf'{re.escape(path)} was built from')
    with pytest.raises(UserValueError, match=error):
        decoding(dict(wrong))
    with pytest.raises(UserValueError, match=r'\(28, 28, 3\).*\(32, 32, 3\)'):
        decoding(dict(odd))
    assert len(pickle.dumps(decoding)) < 1000
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(decoding))(dict(results))['boundary_img'],
        200 - BY[0])

    # bind() drops the open bank, so a new bank takes effect.
    other = build_bank(tmp_path / 'other', away(clean, BY[1])[:, None],
                       clean=clean).path
    decoding.bind(other)
    np.testing.assert_array_equal(
        decoding(dict(results))['boundary_img'], 200 - BY[1])
    grey = build_bank(tmp_path / 'grey', np.zeros((2, 1, 32, 32, 1))).path
    transform.bind(grey)
    with pytest.raises(UserValueError, match=r'\(32, 32, 3\).*\(32, 32, 1\)'):
        transform(dict(results))
    # bind(None) unbinds: through again.
    for unbound in (transform, decoding):
        unbound.bind(None)
        assert unbound(dict(results)) == results


def test_load_boundary_bank_grey_image_gets_a_channel(tmp_path):
    """A 2-D grey ``img`` is kept and banked as one channel, (H, W, 1)."""
    rng = np.random.default_rng(6)
    grey = rng.integers(0, 256, (2, 32, 32), dtype=np.uint8)
    path = build_bank(tmp_path / 'bank', away(grey, BY[0])[:, None, ..., None],
                      clean=grey[..., None]).path
    results = dict(img=grey[1].copy(), sample_idx=1)
    kept = LoadBoundaryBank(path)(dict(results))['boundary_clean']
    assert kept.shape == (32, 32, 1)
    np.testing.assert_array_equal(kept[..., 0], grey[1])
    decoded = LoadBoundaryBank(path, decode=True)(dict(results))
    assert decoded['boundary_img'].shape == (32, 32, 1)
    np.testing.assert_array_equal(decoded['boundary_img'][..., 0],
                                  away(grey[1], BY[0]))
    assert decoded['img'].shape == (32, 32)


def test_unbound_load_boundary_bank_passes_results_through():
    img = np.arange(np.prod(SHAPE), dtype=np.uint8).reshape(SHAPE)
    results = dict(img=img, sample_idx=3, gt_label=1)
    for transform in (LoadBoundaryBank(), LoadBoundaryBank(decode=True),
                      TRANSFORMS.build(dict(type='LoadBoundaryBank'))):
        out = transform(results)
        assert out is results  # the very dict, nothing added or removed
        assert sorted(out) == ['gt_label', 'img', 'sample_idx']
        assert out['img'] is img and out['sample_idx'] == 3
        np.testing.assert_array_equal(
            img, np.arange(np.prod(SHAPE), dtype=np.uint8).reshape(SHAPE))
    # Even for an image no bank could hold: nothing is opened or checked.
    odd = dict(img=np.zeros((28, 28), np.uint8), sample_idx=10**6)
    assert LoadBoundaryBank()(odd) is odd
    assert sorted(odd) == ['img', 'sample_idx']


# --- the banked train pipeline and the cropping fragment -----------------


def load_cfg(name: str) -> Config:
    return Config.fromfile(str(CONFIG_DIR / f'{name}.py'))


def crop_pipeline() -> list:
    """The digits pair's train pipeline with the bank_crop fragment."""
    cfg = merge_fragments(str(DIGITS_PAIR), [str(CROP_FRAGMENT)])
    pipeline = cfg.train_dataloader.dataset.pipeline
    # The fragment's pipeline replaces the pair's, as a whole.
    fragment = Config.fromfile(str(CROP_FRAGMENT))
    assert pipeline == fragment.train_dataloader.dataset.pipeline
    return pipeline


def pipeline_cfg(name: str, key: str) -> list:
    """The pipeline config of ``key``: ``CROP`` is the fragment's (digits
    only), ``AMKD`` the dataset config's train pipeline, which
    :func:`banked` completes once built."""
    if key == CROP:
        assert name == 'digits', 'bank_crop.py is for the digits pairs'
        return crop_pipeline()
    return load_cfg(name).train_pipeline


def banked(pipeline: Compose, key: str) -> Compose:
    """``pipeline`` as training runs it with a bank: the train pipeline gets
    its LoadBoundaryBank from the hook (``add_bank_loader``)."""
    if key == AMKD:
        add_bank_loader(pipeline)
    return pipeline


def amkd_pipeline(name: str, scope: str) -> Compose:
    """Dataset config ``name``'s train pipeline with the bank loader."""
    with DefaultScope.overwrite_default_scope(scope):
        return banked(Compose(load_cfg(name).train_pipeline), AMKD)


def bind_pipeline(transforms, bank_path: str) -> None:
    """Bind the LoadBoundaryBank of a built pipeline, as the hook does."""
    banks = [t for t in transforms if isinstance(t, LoadBoundaryBank)]
    assert len(banks) == 1
    banks[0].bind(bank_path)


def build_bank_pipeline(name: str,
                        scope: str,
                        bank_path: str,
                        key: str = CROP) -> Compose:
    with DefaultScope.overwrite_default_scope(scope):
        pipeline = banked(Compose(pipeline_cfg(name, key)), key)
    bind_pipeline(pipeline.transforms, bank_path)
    return pipeline


def gradient_image() -> np.ndarray:
    """A clean image that shows crops and flips: it grows with x (and
    differs per channel) and is nowhere zero, unlike the padding."""
    x = np.arange(SHAPE[1])
    img = 10 + 2 * x[None, :, None] + 5 * np.arange(3)[None, None, :]
    return np.broadcast_to(img, SHAPE).astype(np.uint8)


def run(pipeline: Compose,
        img: np.ndarray,
        seed: int,
        sample_idx: int = 0,
        field: str = 'boundary_img') -> tuple:
    """Clean output and the packed boundary ``field`` as (H, W, C) arrays,
    plus the sample."""
    np.random.seed(seed)
    packed = pipeline(dict(img=img.copy(), sample_idx=sample_idx, gt_label=1))
    sample = packed['data_samples']
    clean = packed['inputs'].permute(1, 2, 0).numpy()
    return clean, np.asarray(sample.get(field)), sample


def test_cifar10_config_inherits_the_train_pipeline():
    assert load_cfg('cifar10').train_pipeline == load_cfg(
        'cifar100').train_pipeline


@pytest.mark.parametrize('name', ['cifar100', 'digits', 'fashion_mnist',
                                  'tiny_imagenet'])
def test_dataset_configs_have_no_crop_pipeline(name):
    """The cropping pipeline is a fragment now, not a dataset config's."""
    cfg = load_cfg(name)
    for key in ('bank_crop_train_pipeline', 'bank_train_pipeline',
                'amkd_train_pipeline'):
        assert key not in cfg


@pytest.mark.parametrize('scope', SCOPES)
def test_bank_crop_pipeline_builds(scope):
    cfg = load_cfg('digits')
    crop = crop_pipeline()
    with DefaultScope.overwrite_default_scope(scope):
        pipeline = Compose(crop)
    names = [type(t).__name__ for t in pipeline.transforms]
    assert 'LoadBoundaryBank' in names
    assert names[-2:] == ['TransformBroadcaster', 'PackInputs']
    # The fragment decodes the banked sample in the pipeline, to crop it.
    loader = pipeline.transforms[names.index('LoadBoundaryBank')]
    assert loader.decode is True
    # The broadcaster wraps exactly the random transforms of train_pipeline.
    wrapped = [dict(t) for t in crop[-2].transforms]
    loaders = [t for t in cfg.train_pipeline if 'Load' in t['type']]
    assert [dict(t) for t in cfg.train_pipeline] == (
        loaders + wrapped + [dict(type='mmpretrain.PackInputs')])


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name', ['cifar100', 'digits', 'fashion_mnist',
                                  'tiny_imagenet'])
def test_bank_pipeline_is_train_pipeline_plus_bank(name, scope):
    """The hook's pipeline is the train pipeline with LoadBoundaryBank
    after the loading transforms and the clean image packed: the
    bank_train_pipeline the dataset configs used to write out."""
    cfg = load_cfg(name)
    steps = [dict(t) for t in cfg.train_pipeline]
    at = sum('Load' in t['type'] for t in steps)
    expected = [*steps[:at], dict(type='mmpretrain.LoadBoundaryBank'),
                *steps[at:-1], dict(steps[-1], algorithm_keys=CLEAN_KEYS)]
    with DefaultScope.overwrite_default_scope(scope):
        derived = amkd_pipeline(name, scope)
        written = Compose(expected)
    assert [repr(t) for t in derived.transforms] == [
        repr(t) for t in written.transforms]
    assert derived.transforms[-1].algorithm_keys == CLEAN_KEYS
    assert not derived.transforms[at].decode
    if name == 'digits':
        packed = dict(crop_pipeline()[-1])
        assert packed['algorithm_keys'] == BANK_KEYS


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name', ['cifar100', 'digits'])
def test_unbound_amkd_pipeline_is_train_pipeline(name, scope):
    """Without a bank bound the banked pipeline gives what the train
    pipeline gives: the same augmented image, no boundary field."""
    rng = np.random.default_rng(2)
    clean = rng.integers(1, 256, (3, ) + SHAPE, np.uint8)
    with DefaultScope.overwrite_default_scope(scope):
        plain = Compose(load_cfg(name).train_pipeline)
    amkd = amkd_pipeline(name, scope)
    for seed in range(6):
        idx = seed % 3
        np.random.seed(seed)
        out = amkd(dict(img=clean[idx].copy(), sample_idx=idx, gt_label=1))
        np.random.seed(seed)
        expected = plain(dict(img=clean[idx].copy(), sample_idx=idx,
                              gt_label=1))
        assert torch.equal(out['inputs'], expected['inputs'])
        sample = out['data_samples']
        for key in [*AS_BANKED_KEYS, *CLEAN_KEYS]:
            assert key not in sample, key
        assert sorted(sample.keys()) == sorted(
            expected['data_samples'].keys())
        assert sample.gt_label.tolist() == [1]


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name', ['cifar100', 'digits'])
def test_bank_pipeline_keeps_clean_image_as_loaded(name, scope, tmp_path):
    rng = np.random.default_rng(1)
    clean = rng.integers(1, 256, (3, ) + SHAPE, np.uint8)
    path = build_bank(tmp_path / 'bank', away(clean, BY[0])[:, None],
                      clean=clean).path
    bank = BoundaryBankFile.open(path)
    pipeline = build_bank_pipeline(name, scope, path, AMKD)
    with DefaultScope.overwrite_default_scope(scope):
        plain = Compose(load_cfg(name).train_pipeline)
    cropped = 0
    for seed in range(20):
        idx = seed % 3
        clean_out, kept, sample = run(pipeline, clean[idx], seed, idx,
                                      'boundary_clean')
        # The clean image as loaded, un-augmented, and nothing of the bank.
        assert kept.dtype == np.uint8
        np.testing.assert_array_equal(kept, clean[idx])
        for key in AS_BANKED_KEYS:
            assert key not in sample, key
        # It is the image the bank's change is added to (as the step does).
        read = bank.read(np.array([idx]), np.zeros(1, int), kept[None])
        np.testing.assert_array_equal(read['images'][0],
                                      away(clean[idx], BY[0]))
        # The clean image is augmented as by train_pipeline with the seed.
        np.random.seed(seed)
        expected = plain(dict(img=clean[idx].copy(), gt_label=1))['inputs']
        np.testing.assert_array_equal(clean_out,
                                      expected.permute(1, 2, 0).numpy())
        cropped += bool((clean_out == 0).any())
    assert cropped > 10


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name', ['digits'])
def test_bank_crop_pipeline_same_image_same_output(name, scope, tmp_path):
    rng = np.random.default_rng(1)
    clean = rng.integers(0, 256, (3, ) + SHAPE, np.uint8)
    # Banked images equal to the clean ones: a change of 0, scale 0.
    path = build_bank(tmp_path / 'bank', clean[:, None], clean=clean).path
    pipeline = build_bank_pipeline(name, scope, path)
    with DefaultScope.overwrite_default_scope(scope):
        plain = Compose(load_cfg(name).train_pipeline)
    for seed in range(20):
        idx = seed % 3
        clean_out, bank_out, sample = run(pipeline, clean[idx], seed, idx)
        np.testing.assert_array_equal(clean_out, bank_out)
        assert bank_out.dtype == np.float32 and bank_out.shape == SHAPE
        assert sample.boundary_target == 0 and sample.sample_idx == idx
        assert 'boundary_clean' not in sample
        # Same seed, same crop/flip as the ordinary train_pipeline (K=1 makes
        # no draw, so the random streams line up).
        np.random.seed(seed)
        expected = plain(dict(img=clean[idx].copy(), gt_label=1))['inputs']
        np.testing.assert_array_equal(clean_out,
                                      expected.permute(1, 2, 0).numpy())


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name, flips', [('digits', False)])
def test_bank_crop_pipeline_shares_crop_and_flip(name, flips, scope, tmp_path):
    clean = gradient_image()
    path = build_bank(tmp_path / 'bank',
                      (clean + np.float32(OFFSET))[None, None],
                      clean=clean[None]).path
    pipeline = build_bank_pipeline(name, scope, path)
    crops, flipped = set(), set()
    for seed in range(60):
        clean_out, bank_out, _ = run(pipeline, clean, seed)
        padding = clean_out == 0
        # Zero padding in the same places, the same pixels elsewhere.
        np.testing.assert_array_equal(bank_out == 0, padding)
        np.testing.assert_array_equal(bank_out[~padding],
                                      clean_out[~padding] + OFFSET)
        crops.add(padding.tobytes())
        row = clean_out[SHAPE[0] // 2, :, 0]
        content = row[row > 0].astype(int)
        flipped.add(bool(content[0] > content[-1]))
    assert len(crops) > 10
    assert flipped == ({False, True} if flips else {False})


# --- datasets with the bank pipelines ----------------------------------


def bank_dataset(name: str, scope: str, tmp_path: Path, key: str,
                 **dataset_kwargs):
    """A train dataset with pipeline ``key`` and a bank bound to it whose
    K=2 images of each index are ``away(clean, by)`` for ``by`` in
    :data:`BY` (exact when decoded)."""
    cfg = load_cfg(name)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.update(pipeline=pipeline_cfg(name, key), **dataset_kwargs)
    with DefaultScope.overwrite_default_scope(scope):
        dataset = DATASETS.build(dataset_cfg)
        banked(dataset.pipeline, key)
    clean = np.stack(
        [dataset.get_data_info(i)['img'] for i in range(len(dataset))])
    images = np.stack([away(clean, by) for by in BY], axis=1)
    bank = build_bank(tmp_path / 'bank', images, clean=clean)
    bind_pipeline(dataset.pipeline.transforms, bank.path)
    return dataset, bank


def check_packed(inputs, sample, clean: np.ndarray, key: str,
                 bank: BoundaryBankFile) -> None:
    """The packed boundary fields and their relation to the clean image
    (``clean``, as loaded), to the augmented input and to ``bank``."""
    clean_out = inputs.permute(1, 2, 0).numpy()
    if key == AMKD:  # the clean image as loaded, for the step
        kept = sample.boundary_clean
        assert isinstance(kept, np.ndarray)
        assert kept.dtype == clean.dtype and kept.shape == SHAPE
        np.testing.assert_array_equal(kept, clean)
        for field in AS_BANKED_KEYS:
            assert field not in sample, field
        read = bank.read(np.array([sample.sample_idx]), np.array([1]),
                         kept[None])
        np.testing.assert_array_equal(read['images'][0], away(clean, BY[1]))
        return
    bank_out = sample.boundary_img
    assert 'boundary_clean' not in sample
    assert isinstance(bank_out, np.ndarray)
    assert bank_out.dtype == np.float32 and bank_out.shape == SHAPE
    assert sample.boundary_target in (0, 10)
    assert isinstance(sample.boundary_correct, bool)
    assert isinstance(sample.boundary_reached, bool)
    by = BY[sample.boundary_target // 10]
    # away() never gives 0, so the banked image is 0 where padded only.
    padding = bank_out == 0
    np.testing.assert_array_equal(clean_out[padding], 0)
    np.testing.assert_array_equal(bank_out[~padding],
                                  away(clean_out[~padding], by))


@pytest.mark.parametrize('key', [AMKD])
@pytest.mark.parametrize('scope', SCOPES)
def test_cifar_dataset_packs_boundary_fields(scope, key, make_cifar,
                                             tmp_path):
    root = make_cifar('cifar100', num_per_class=1)
    dataset, bank = bank_dataset(
        'cifar100', scope, tmp_path, key, data_root=str(root))
    assert bank.num == len(dataset) == 100
    for idx in (0, 57, 99):
        packed = dataset[idx]
        sample = packed['data_samples']
        assert sample.sample_idx == idx
        check_packed(packed['inputs'], sample,
                     dataset.get_data_info(idx)['img'], key, bank)


@pytest.mark.parametrize('key', PIPELINES)
def test_digits_dataset_packs_boundary_fields(key, tmp_path):
    dataset, bank = bank_dataset('digits', 'mmrazor', tmp_path, key)
    idx = len(dataset) - 1
    packed = dataset[idx]
    assert packed['data_samples'].sample_idx == idx
    check_packed(packed['inputs'], packed['data_samples'],
                 dataset.get_data_info(idx)['img'], key, bank)


@pytest.mark.parametrize('name, key', [('cifar100', AMKD),
                                       ('digits', CROP)])
def test_dataloader_workers_open_the_bank(name, key, make_cifar, tmp_path):
    kwargs = ({} if name == 'digits' else dict(
        data_root=str(make_cifar('cifar100', num_per_class=1))))
    dataset, bank = bank_dataset(name, 'mmrazor', tmp_path, key, **kwargs)
    loader = dict(
        dataset=dataset,
        batch_size=8,
        num_workers=1,
        persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False))
    with DefaultScope.overwrite_default_scope('mmrazor'):
        batch = next(iter(Runner.build_dataloader(loader, seed=0)))
    assert len(batch['data_samples']) == 8
    field = 'boundary_clean' if key == AMKD else 'boundary_img'
    for inputs, sample in zip(batch['inputs'], batch['data_samples']):
        check_packed(inputs, sample,
                     dataset.get_data_info(sample.sample_idx)['img'], key,
                     bank)
        # How an algorithm turns the packed HWC array into a CHW tensor.
        assert PackInputs.format_input(
            sample.get(field)).shape == inputs.shape
