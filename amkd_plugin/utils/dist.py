# Copyright (c) amkd-mmrazor contributors.
"""Which machine a rank is on, whether all ranks share a folder, and a free
port for torchrun's store."""
import os
import os.path as osp
import socket
import uuid

from mmengine.dist import (all_gather_object, barrier, broadcast_object_list,
                           get_rank)

from .cli import UserInputError


def machine() -> str:
    """This process's machine: torchrun's node rank (``GROUP_RANK``), or
    the host name under other launchers."""
    group = os.environ.get('GROUP_RANK')
    return f'node {group}' if group is not None else socket.gethostname()


def free_port() -> int:
    """A TCP port on localhost that is free now (for torchrun's store)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def on_every_rank(flag: bool) -> bool:
    """Whether ``flag`` holds on every rank (a collective call)."""
    return all(all_gather_object(bool(flag)))


def check_shared_folder(folder: str, fix: str) -> None:
    """Stop on every rank unless all see ``folder`` as rank 0 writes it.

    Rank 0 writes a probe file there; a rank on a machine that mounts
    another folder at the same path, or a rank given another path, does
    not see it. A collective call.

    Args:
        folder (str): This rank's path of the folder.
        fix (str): What the user can do instead, for the message.
    """
    name = [f'.shared-probe-{uuid.uuid4().hex}' if get_rank() == 0 else None]
    if get_rank() == 0:
        os.makedirs(folder, exist_ok=True)
        open(osp.join(folder, name[0]), 'w').close()
    broadcast_object_list(name)
    seen = all_gather_object(
        (osp.isfile(osp.join(folder, name[0])), machine(), folder))
    barrier()  # every rank has looked before the probe goes
    if get_rank() == 0:
        os.remove(osp.join(folder, name[0]))
    blind = [(rank, where, path) for rank, (sees, where, path)
             in enumerate(seen) if not sees]
    if blind:
        rank, where, path = blind[0]
        raise UserInputError(
            f'{folder} is not shared by all ranks: rank {rank} ({where}) does '
            f'not see in {path} what rank 0 ({seen[0][1]}) writes to '
            f'{seen[0][2]}. {fix}')
