# Copyright (c) amkd-mmrazor contributors.
"""Run one of MMRazor's own tools with the plugin's mends applied first.

MMRazor's ``tools/train.py`` and ``tools/test.py`` (the scripts ``mim train
mmrazor`` runs) register MMRazor's modules before they read the config, so
on torch >= 2 they stop at MMRazor's import (open-mmlab/mmrazor#615, #632)
before the config's ``custom_imports`` can bring in the mend of
:mod:`amkd_plugin.compat`. ``python -m`` imports this package, and with it
the mend, before the tool starts; the tool then runs unchanged.

Usage:
    python -m amkd_plugin.mmrazor_tool {train,test} CONFIG [tool args...]
"""
import os.path as osp
import runpy
import sys

import mmrazor


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ('train', 'test'):
        sys.exit('usage: python -m amkd_plugin.mmrazor_tool {train,test} '
                 'CONFIG [tool args...]')
    path = osp.join(osp.dirname(mmrazor.__file__), '.mim', 'tools',
                    f'{sys.argv[1]}.py')
    sys.argv = [path, *sys.argv[2:]]
    runpy.run_path(path, run_name='__main__')


if __name__ == '__main__':
    main()
