# Copyright (c) amkd-mmrazor contributors.
"""The package's floors (docs/architecture.md): every import goes down."""
import ast
import re
from typing import Dict, Iterator, Tuple

from helpers import REPO

PACKAGE = REPO / 'amkd_plugin'
# Aggregating package files: they import every part to register it.
AGGREGATES = {'', 'models'}


def floors() -> Dict[str, int]:
    """The rooms and their floors, as docs/architecture.md draws them."""
    text = (REPO / 'docs/architecture.md').read_text()
    found = {}
    for floor, rooms in re.findall(r'^floor (\d+)  (.+)$', text, re.M):
        for room in rooms.split():
            found[room] = int(floor)
    return found


def room_of(module: str) -> str:
    """``amkd_plugin.models.boundary.banked_boundary`` ->
    ``models.boundary``."""
    parts = module.split('.')[1:]
    if parts[:1] == ['models'] and len(parts) > 1:
        return '.'.join(parts[:2])
    return parts[0] if parts else ''


def imports() -> Iterator[Tuple[str, str, str]]:
    """(file, importing room, imported module) of every package import."""
    for path in sorted(PACKAGE.rglob('*.py')):
        relative = path.relative_to(REPO).with_suffix('')
        parts = list(relative.parts)
        if parts[-1] == '__init__':
            parts.pop()
            package = parts
        else:
            package = parts[:-1]
        module = '.'.join(parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - node.level + 1]
                    target = '.'.join(base + ([node.module]
                                              if node.module else []))
                else:
                    target = node.module or ''
                names = [target] if node.module or not node.level else [
                    f'{target}.{alias.name}' for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name == 'amkd_plugin' or name.startswith('amkd_plugin.'):
                    yield str(relative), room_of(module), name


def test_every_import_goes_down_a_floor_or_stays():
    floor = floors()
    assert floor, 'docs/architecture.md draws no floors'
    upward = []
    for path, room, target in imports():
        if room in AGGREGATES:
            continue
        to = room_of(target)
        if to == room or to in AGGREGATES and room == 'apis':
            continue  # apis may import the package to register it all
        if to in AGGREGATES or floor[to] > floor[room]:
            upward.append(f'{path} ({room}, floor {floor[room]}) imports '
                          f'{target}')
        elif floor[to] == floor[room]:
            upward.append(f'{path} imports {target} on its own floor')
    assert upward == []


def test_the_picture_names_every_room():
    on_disk = {
        room_of('.'.join(path.relative_to(REPO).with_suffix('').parts))
        for path in PACKAGE.rglob('*.py') if path.name != '__init__.py'
    }
    assert on_disk == set(floors())


def test_the_tools_import_the_package_never_each_other():
    for path in sorted((REPO / 'tools').rglob('*.py')):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith('tools'), path
                assert not node.level, path
