# Copyright (c) amkd-mmrazor contributors.
"""Methods compared over paired seeds, from one small metrics file a run.

A *run* is one (method, epochs, seed) of a benchmark: a pair
(``configs/amkd/<pair>.py`` and its baselines), a teacher checkpoint and
the settings every run of it shares. :func:`run_all` trains and tests each
run through the ordinary tools (:func:`train_and_test`) and writes its
metrics to ``<results>/<method>/e<epochs>_s<seed>.json``: top-1, top-5,
boundary agreement, wall time and what it ran under (config and teacher
hashes, commit, machine, load). A run whose file exists is not trained
again, so the files, which are committed, are where a long benchmark picks
up. Tables and figures (:func:`method_table`, :func:`curve_table`,
:func:`draw_curve`) are built from those files only.

Methods are data: ``configs/experiments/methods.yml`` maps a key to a
label, a config (``{pair}`` filled in) and fragments merged onto it.
"""
import argparse
import glob
import hashlib
import json
import math
import os
import os.path as osp
import platform
import statistics
import subprocess
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import yaml
from mmengine.config import DictAction

from amkd_plugin.utils import UserInputError, sha256, write_atomically
from amkd_plugin.utils.fragments import merge_fragments
from .experiments import test_checkpoint, train_and_test

METHODS_FILE = 'configs/experiments/methods.yml'
# Every test asks for top-5 too.
TEST_OPTIONS = ['test_evaluator.topk=[1,5]']
# Figures the test reports that older metrics files lack; :func:`retest`
# adds them from the runs' checkpoints.
LATER_FIGURES = {'agree_clean', 'missed'}
# With 5 seeds, |t| >= 2.78 is beyond the seed noise (two-sided paired
# t-test, 4 degrees of freedom, p < 0.05).
T_CRITICAL = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57}
# A schedule has converged when its mean top-1 is within this many points
# of the longest measured (issue 25's rule).
CONVERGED_WITHIN = 0.3


@dataclass(frozen=True)
class Method:
    """A row of the tables: a config and the fragments merged onto it.

    Args:
        key (str): Its name on the command line.
        label (str): Its name in the tables.
        config (str): The config, ``{pair}`` standing for the pair's name.
        fragments (tuple[str]): Files of ``configs/experiments`` (without
            the folder and ``.py``) merged onto it in order.
    """
    key: str
    label: str
    config: str
    fragments: Tuple[str, ...] = ()

    @property
    def short_label(self) -> str:
        """The label up to its colon: the method without its details."""
        return self.label.split(':')[0]

    def files(self, pair: str) -> Tuple[str, List[str]]:
        """The config file and fragment files of this method on ``pair``."""
        return (self.config.format(pair=pair), [
            f'configs/experiments/{name}.py' for name in self.fragments
        ])


def load_methods(path: str = METHODS_FILE) -> Dict[str, Method]:
    """The methods of ``path``, by key, in the file's order."""
    with open(path) as f:
        entries = yaml.safe_load(f)
    return {
        key: Method(key, entry['label'], entry['config'],
                    tuple(entry.get('fragments', ())))
        for key, entry in entries.items()
    }


@dataclass(frozen=True)
class Run:
    """One training of a benchmark."""
    method: str
    epochs: int
    seed: int

    @property
    def name(self) -> str:
        return f'{self.method}/e{self.epochs}_s{self.seed}'


@dataclass
class Benchmark:
    """What every run of one benchmark shares.

    Args:
        pair (str): The pair's name (``configs/amkd/<pair>.py``).
        teacher_ckpt (str): The teacher of every distilled run.
        results (str): The folder of the runs' metrics files.
        work_dir (str): The folder of the runs' work dirs.
        fragments (Sequence[str]): Fragment files merged onto every method
            after its own (e.g. the schedule).
        cfg_options (Sequence[str]): ``key=value`` options of every run.
        fidelity_images (int, optional): Boundary fidelity on the first N
            test images only.
        jobs (int): Trainings at once.
        threads (int): Torch threads of each.
        methods (dict): The methods by key (:func:`load_methods`).
    """
    pair: str
    teacher_ckpt: str
    results: str
    work_dir: str
    fragments: Sequence[str] = ()
    cfg_options: Sequence[str] = ()
    fidelity_images: Optional[int] = None
    jobs: int = 1
    threads: int = 1
    methods: Dict[str, Method] = field(default_factory=load_methods)

    def metrics_file(self, run: Run) -> str:
        return osp.join(self.results, f'{run.name}.json')

    def plan(self, run: Run) -> dict:
        """The config, fragments, options and work dir of ``run``."""
        if run.method not in self.methods:
            raise UserInputError(
                f'No method {run.method!r} in {METHODS_FILE}; known: '
                f'{", ".join(self.methods)}.')
        config, fragments = self.methods[run.method].files(self.pair)
        fragments = [*fragments, *self.fragments]
        model = merge_fragments(config, fragments).model
        # A student alone has no teacher; stock MMRazor KD has no attack. A
        # bank is built once for the teacher, shared by the seeds: its key
        # names the attack's seed.
        distilled = 'teacher_ckpt' in model
        online = model.get('boundary', {}).get('type') == 'OnlineBoundary'
        options = [
            *([f'model.teacher_ckpt={self.teacher_ckpt}'] if distilled else
              []), f'randomness.seed={run.seed}',
            *([f'model.boundary.attack.seed={run.seed}'] if online else []),
            *self.cfg_options
        ]
        return dict(
            config=config,
            fragments=fragments,
            options=options,
            distilled=distilled,
            work_dir=osp.join(self.work_dir,
                              f'{run.method}_e{run.epochs}_s{run.seed}'))

    def config_hash(self, run: Run, plan: Optional[dict] = None) -> str:
        """SHA-256 of ``run``'s resolved config (its work dir left out);
        ``plan``: its :meth:`plan`, if made already."""
        plan = plan or self.plan(run)
        cfg = merge_fragments(plan['config'], plan['fragments'])
        cfg.merge_from_dict(
            parse_options(
                [f'train_cfg.max_epochs={run.epochs}', *plan['options']]))
        resolved = {k: v for k, v in cfg.to_dict().items() if k != 'work_dir'}
        text = json.dumps(resolved, sort_keys=True, default=repr)
        return sha256_text(text)


def parse_options(options: Sequence[str]) -> dict:
    """``key=value`` strings as ``--cfg-options`` parses them."""
    namespace = argparse.Namespace()
    DictAction(option_strings=[], dest='options')(None, namespace,
                                                  list(options))
    return namespace.options


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def commit() -> str:
    """The checkout's commit, ``-dirty`` when it has uncommitted changes."""
    try:
        return subprocess.run(
            ['git', 'describe', '--always', '--dirty', '--abbrev=12'],
            capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def machine() -> str:
    """The CPU model (timings and floats depend on it)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def epoch_mean(work_dir: str, key: str) -> Optional[float]:
    """Mean over epochs of a scalar the boundary hook logs per epoch."""
    values = []
    for path in sorted(
            glob.glob(osp.join(work_dir, '*/vis_data/scalars.json'))):
        with open(path) as f:
            values += [json.loads(line).get(key) for line in f]
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def bank_report(work_dir: str) -> Optional[str]:
    """The bank builder's storage report from a run's log, if it built one."""
    for path in sorted(glob.glob(osp.join(work_dir, '*/*.log'))):
        with open(path) as f:
            for line in f:
                if 'Boundary bank:' in line and 'reached the boundary' in line:
                    return line[line.index('Boundary bank:'):].strip()
    return None


def train_run(bench: Benchmark, run: Run) -> dict:
    """Train and test ``run`` unless its metrics file exists; its metrics.

    The file is written atomically once the test is done, so a killed run
    leaves none (its work dir resumes).
    """
    path = bench.metrics_file(run)
    if osp.isfile(path):
        return read_metrics(path)
    plan = bench.plan(run)
    load = os.getloadavg()[0]
    result = train_and_test(
        plan['config'], plan['work_dir'], run.epochs, plan['options'],
        reuse=True, fidelity=plan['distilled'],
        test_args=_fidelity_args(bench, plan), fragments=plan['fragments'],
        test_options=TEST_OPTIONS)
    metrics = dict(
        method=run.method,
        label=bench.methods[run.method].label,
        pair=bench.pair,
        epochs=run.epochs,
        seed=run.seed,
        top1=result['accuracy/top1'],
        top5=result.get('accuracy/top5'),
        fidelity=fidelity_of(result),
        margin_ratio=epoch_mean(plan['work_dir'], 'boundary_margin_ratio'),
        passes=epoch_mean(plan['work_dir'], 'boundary_passes'),
        bank_report=bank_report(plan['work_dir']),
        train_seconds=result['train_seconds'],
        resumed=result['resumed'],
        load=dict(jobs=bench.jobs, threads=bench.threads,
                  loadavg_at_start=round(load, 2)),
        machine=f'{machine()} ({os.cpu_count()} logical CPUs)',
        config_sha256=bench.config_hash(run, plan),
        teacher_sha256=(sha256(bench.teacher_ckpt)
                        if plan['distilled'] else None),
        commit=commit(),
        command=result['command'])
    write_atomically(path, (json.dumps(metrics, indent=1) + '\n').encode())
    return metrics


def fidelity_of(result: dict) -> dict:
    """The ``fidelity/*`` figures of a test's metrics, by bare name."""
    return {k.split('/', 1)[1]: v for k, v in result.items()
            if k.startswith('fidelity/')}


def _fidelity_args(bench: Benchmark, plan: dict) -> List[str]:
    return ([f'--fidelity-images={bench.fidelity_images}']
            if plan['distilled'] and bench.fidelity_images else [])


def retest(bench: Benchmark, run: Run) -> bool:
    """Test ``run`` again from its work dir's last checkpoint and add to its
    metrics file the test's figures it lacks (:data:`LATER_FIGURES`).

    Top-1 must come out as the file has it (within a tenth of a test
    image's weight), or the file is left as it was and the run named; the
    file keeps every other value and says when it was retested. False when
    there is nothing to add or no checkpoint to test.
    """
    path = bench.metrics_file(run)
    if not osp.isfile(path):
        return False
    metrics = read_metrics(path)
    plan = bench.plan(run)
    checkpoint = osp.join(plan['work_dir'], f'epoch_{run.epochs}.pth')
    if (not plan['distilled'] or not osp.isfile(checkpoint)
            or LATER_FIGURES <= set(metrics['fidelity'])):
        return False
    os.environ['OMP_NUM_THREADS'] = str(bench.threads)
    result = test_checkpoint(
        plan['config'], checkpoint, plan['work_dir'],
        osp.join(plan['work_dir'], 'retest_metrics.json'),
        [*plan['options'], *TEST_OPTIONS], True, _fidelity_args(bench, plan),
        plan['fragments'])
    if abs(result['accuracy/top1'] - metrics['top1']) > 1e-3:
        raise UserInputError(
            f'run {run.name}: tested again, its top-1 is '
            f'{result["accuracy/top1"]:.2f}, not the {metrics["top1"]:.2f} '
            f'of {path}, which is left as it was. Check that '
            f'{checkpoint} is the checkpoint that file was tested on.')
    added = {
        name: value
        for name, value in fidelity_of(result).items()
        if name in LATER_FIGURES
    }
    metrics['fidelity'].update(added)
    metrics['retested'] = dict(commit=commit(), added=sorted(added))
    write_atomically(path, (json.dumps(metrics, indent=1) + '\n').encode())
    return True


def read_metrics(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def run_all(bench: Benchmark, runs: Sequence[Run]) -> None:
    """Train every run without a metrics file, ``bench.jobs`` at once, in
    the order given (each job takes the next run as it becomes free).

    A run that fails stops the rest from starting (those already training
    finish and keep their metrics) with one line naming it and its work
    dir.
    """
    os.environ['OMP_NUM_THREADS'] = str(bench.threads)
    for run in runs:
        bench.plan(run)  # a typo stops here, before hours of training
    queue = list(reversed(runs))
    with ThreadPoolExecutor(bench.jobs) as pool:
        # Only ``jobs`` runs are ever submitted: a failure stops the queue.
        running = {}
        while queue or running:
            while queue and len(running) < bench.jobs:
                run = queue.pop()
                running[pool.submit(train_run, bench, run)] = run
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                run = running.pop(future)
                if future.exception() is not None:
                    queue.clear()
                    raise UserInputError(
                        f'run {run.name} failed ({future.exception()}); its '
                        f'log is in {bench.plan(run)["work_dir"]}. Runs '
                        'that finished kept their metrics files: fix it and '
                        'run the same command again.') from future.exception()


def collect(results: str, runs: Iterable[Run]) -> Dict[Run, dict]:
    """The metrics of those of ``runs`` that have a file in ``results``."""
    found = {}
    for run in runs:
        path = osp.join(results, f'{run.name}.json')
        if osp.isfile(path):
            found[run] = read_metrics(path)
    return found


def summary(values: Sequence[Optional[float]]) -> str:
    """Mean ± std of the values given, ``n/a`` without any."""
    values = [v for v in values if v is not None]
    if not values:
        return 'n/a'
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}'


def counted_summary(values: Sequence[Optional[float]]) -> str:
    """:func:`summary`, with the number of values in brackets when some
    are missing (runs tested before the figure existed)."""
    known = [v for v in values if v is not None]
    text = summary(known)
    return text if len(known) in (0, len(values)) else f'{text} ({len(known)})'


def paired_t(differences: Sequence[Optional[float]]) -> Optional[float]:
    """The paired t statistic of per-seed differences (mean / std error).

    The metrics files keep top-1 as float32 values (91.1500015...): the
    differences are rounded to 1e-4 points, far below one test image, so
    that equal differences have no spread made of float noise.
    """
    values = [round(d, 4) for d in differences if d is not None]
    if len(values) < 2:
        return None
    spread = statistics.stdev(values)
    mean = statistics.mean(values)
    if spread == 0:
        return None if mean == 0 else math.copysign(math.inf, mean)
    return mean / (spread / math.sqrt(len(values)))


def verdict(t: Optional[float], n: int) -> str:
    """Whether a paired difference over ``n`` seeds is beyond the noise."""
    if t is None or n not in T_CRITICAL:
        return '-'
    beyond = abs(t) >= T_CRITICAL[n]
    return f'{t:.2f}' + (' (beyond noise)' if beyond else ' (noise)')


def parse_spec(spec: str,
               default_epochs: Sequence[int]) -> List[Tuple[str, int]]:
    """``kd@60,120`` -> [('kd', 60), ('kd', 120)]; ``kd`` takes the
    default lengths."""
    key, _, lengths = spec.partition('@')
    epochs = [int(e) for e in lengths.split(',')] if lengths else list(
        default_epochs)
    return [(key, e) for e in epochs]


def method_table(results: str, rows: Sequence[Tuple[str, int]],
                 baselines: Sequence[Tuple[str, int]], seeds: Sequence[int],
                 methods: Dict[str, Method],
                 brief: bool = False) -> List[str]:
    """A Markdown table: a row per (method, epochs), paired by seed.

    Columns: top-1 and top-5 (mean ± std over the seeds with a file), for
    each baseline the paired difference and its t with the verdict at p <
    0.05, boundary agreement (mean over t = 0.5, 1, 1.5), KL at the
    boundary, agreement on the clean test images, the test images only
    the teacher gets right (``missed``), and the wall time over the first
    baseline's with the same seed and epochs' run. Missing runs are
    counted in the ``seeds`` column. ``brief`` keeps the method (its label
    up to a colon), seeds, top-1 and the paired columns: a headline a
    reader takes in at once.
    """
    timed_against = [(baselines[0][0], epochs) for _, epochs in rows]
    wanted = {Run(key, epochs, seed)
              for key, epochs in [*rows, *baselines, *timed_against]
              for seed in seeds}
    found = collect(results, wanted)
    header = ['method', 'epochs', 'seeds', 'top-1 (%)', 'top-5 (%)']
    for key, epochs in baselines:
        name = f'{methods[key].short_label} @{epochs}'
        header += [f'vs {name} (points)', 't']
    header += ['agree mean (%)', 'KL t=1', 'test agree (%)', 'missed (%)',
               'train time vs '
               f'{methods[baselines[0][0]].short_label}']
    table = [header]
    for key, epochs in rows:
        per_seed = {s: found.get(Run(key, epochs, s)) for s in seeds}
        done = {s: m for s, m in per_seed.items() if m}
        method = methods[key]
        cells = [method.short_label if brief else method.label, str(epochs),
                 f'{len(done)}/{len(seeds)}',
                 summary([m['top1'] for m in done.values()]),
                 summary([m['top5'] for m in done.values()])]
        for base_key, base_epochs in baselines:
            if (key, epochs) == (base_key, base_epochs):
                cells += ['-', '-']
                continue
            deltas = [
                m['top1'] - found[Run(base_key, base_epochs, s)]['top1']
                for s, m in done.items() if Run(base_key, base_epochs, s) in
                found
            ]
            cells += [summary(deltas),
                      verdict(paired_t(deltas), len(deltas))]
        cells += [
            summary([m['fidelity'].get('agree_mean') for m in done.values()]),
            summary([m['fidelity'].get('kl_t1.0') for m in done.values()]),
            *(counted_summary([m['fidelity'].get(key)
                               for m in done.values()])
              for key in ('agree_clean', 'missed')),
            summary(time_ratios(found, done, baselines[0], epochs))
        ]
        table.append(cells)
    kept = [i for i, name in enumerate(header)
            if not brief or name in ('method', 'seeds', 'top-1 (%)', 't')
            or name.startswith('vs ')]
    lines = ['| ' + ' | '.join(cells[i] for i in kept) + ' |'
             for cells in table]
    return lines[:1] + ['|---' * len(kept) + '|'] + lines[1:]


def folders_table(folders: Sequence[str], run: Tuple[str, int],
                  seeds: Sequence[int]) -> List[str]:
    """A Markdown table of one method's runs kept in several results
    folders (the same configs trained at other commits), paired by seed
    with the first folder's: a row per folder, its commits, top-1 per seed,
    mean ± std, and the paired difference with its t."""
    key, epochs = run
    found = [{
        r.seed: m
        for r, m in collect(folder, [Run(key, epochs, s)
                                     for s in seeds]).items()
    } for folder in folders]
    header = ['results', 'commit', *[f'seed {s}' for s in seeds],
              'top-1 (%)', f'vs {folders[0]} (points)', 't']
    lines = ['| ' + ' | '.join(header) + ' |', '|---' * len(header) + '|']
    for row, (folder, done) in enumerate(zip(folders, found)):
        deltas = [m['top1'] - found[0][s]['top1']
                  for s, m in done.items() if s in found[0]]
        lines.append('| ' + ' | '.join([
            folder, ', '.join(sorted({m['commit'] for m in done.values()})),
            *[f'{done[s]["top1"]:.2f}' if s in done else '-' for s in seeds],
            summary([m['top1'] for m in done.values()]),
            *([summary(deltas), verdict(paired_t(deltas), len(deltas))]
              if row else ['-', '-'])
        ]) + ' |')
    return lines


def time_ratios(found: Dict[Run, dict], done: Dict[int, dict],
                baseline: Tuple[str, int], epochs: int) -> List[float]:
    """Wall time over the baseline's with the same seed and length."""
    ratios = []
    for seed, metrics in done.items():
        base = found.get(Run(baseline[0], epochs, seed))
        if base and base['train_seconds'] and metrics['train_seconds']:
            ratios.append(metrics['train_seconds'] / base['train_seconds'])
    return ratios


def curve(results: str, keys: Sequence[str],
          seeds: Sequence[int]) -> Dict[str, Dict[int, List[float]]]:
    """Top-1 by method and epochs, over the seeds with a file."""
    points: Dict[str, Dict[int, List[float]]] = {}
    for key in keys:
        for path in glob.glob(osp.join(results, key, 'e*_s*.json')):
            metrics = read_metrics(path)
            if metrics['seed'] in seeds:
                points.setdefault(key, {}).setdefault(
                    metrics['epochs'], []).append(metrics['top1'])
    return points


def curve_table(points: Dict[str, Dict[int, List[float]]],
                methods: Dict[str, Method]) -> List[str]:
    """Top-1 (mean ± std, seeds) against epochs, a column per length."""
    lengths = sorted({e for by_length in points.values() for e in by_length})
    lines = ['| method | ' + ' | '.join(f'{e} epochs' for e in lengths) +
             ' |', '|---' * (len(lengths) + 1) + '|']
    for key, by_length in points.items():
        cells = [
            f'{summary(by_length[e])} ({len(by_length[e])})'
            if e in by_length else '-' for e in lengths
        ]
        lines.append(f'| {methods[key].label} | ' + ' | '.join(cells) + ' |')
    return lines


def converged_length(by_length: Dict[int, List[float]],
                     tolerance: float = CONVERGED_WITHIN) -> Optional[int]:
    """The shortest length whose mean top-1 is within ``tolerance`` points
    of the longest length's; None below two lengths, where there is no
    curve to choose from."""
    if len(by_length) < 2:
        return None
    longest = statistics.mean(by_length[max(by_length)])
    return min(e for e, values in by_length.items()
               if statistics.mean(values) >= longest - tolerance)


def draw_curve(points: Dict[str, Dict[int, List[float]]],
               methods: Dict[str, Method], path: str, title: str) -> None:
    """Top-1 against epochs (log scale), mean and std over seeds, as PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for key, by_length in points.items():
        lengths = sorted(by_length)
        means = [statistics.mean(by_length[e]) for e in lengths]
        spreads = [statistics.stdev(by_length[e]) if len(by_length[e]) > 1
                   else 0 for e in lengths]
        ax.errorbar(lengths, means, yerr=spreads, marker='o', capsize=3,
                    label=methods[key].short_label)
    ax.set_xscale('log', base=2)
    all_lengths = sorted({e for b in points.values() for e in b})
    ax.set_xticks(all_lengths, [str(e) for e in all_lengths])
    ax.set_xlabel('epochs (cosine schedule over the whole run)')
    ax.set_ylabel('test top-1 (%)')
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_section(text: str, path: str, section: Optional[str]) -> None:
    """Write ``text`` to ``path``, or replace its ``section`` there.

    A section sits between ``<!-- section NAME -->`` and
    ``<!-- end NAME -->`` lines; a new one is appended; a name that is
    there twice is refused, since either could be meant.
    """
    if section is None:
        with open(path, 'w') as f:
            f.write(text + '\n')
        return
    begin, end = f'<!-- section {section} -->', f'<!-- end {section} -->'
    old = open(path).read() if osp.isfile(path) else ''
    if old.count(begin) > 1:
        raise UserInputError(f'{path} has section {section!r} more than '
                             'once: rename one, then run this again.')
    block = f'{begin}\n{text}\n{end}'
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = (old.rstrip('\n') + '\n\n' if old else '') + block + '\n'
    with open(path, 'w') as f:
        f.write(new)


def report(bench: Benchmark, rows: Sequence[Tuple[str, int]],
           seeds: Sequence[int], baselines: Sequence[Tuple[str, int]],
           command: str, figure: Optional[str] = None,
           link_from: str = '.', brief: bool = False) -> str:
    """The Markdown of a results section: the table of ``rows`` against
    ``baselines`` (``brief``: its headline columns, :func:`method_table`)
    or, with ``figure``, the curve of top-1 against epochs drawn there
    (linked relative to the folder ``link_from``); the command that wrote
    it and what the runs ran on."""
    methods = bench.methods
    found = collect(bench.results,
                    {Run(k, e, s) for k, e in [*rows, *baselines]
                     for s in seeds})
    loads = sorted({(m['load']['jobs'], m['load']['threads'])
                    for m in found.values()})
    machines = sorted({m['machine'] for m in found.values()})
    lines = [f'Written by `{command}` from the metrics files in '
             f'`{bench.results}/` ({len(found)} runs).', '']
    if not found:
        return '\n'.join(lines + [f'Seeds {list(seeds)}: no run yet.'])
    if figure:
        keys = list(dict.fromkeys(k for k, _ in rows))
        points = curve(bench.results, keys, seeds)
        # The options say which data: the 2% and full-data curves train
        # the 5% pair's config with another dataset fraction.
        options = ', '.join(bench.cfg_options)
        draw_curve(points, methods, figure,
                   f'{bench.pair}: test top-1 against schedule length'
                   + (f'\n{options}' if options else ''))
        link = osp.relpath(figure, link_from)
        lines += [f'![top-1 against epochs]({link})', '',
                  'Top-1 (%), mean ± std over the seeds with a run (their '
                  'number in brackets):', '', *curve_table(points, methods),
                  '']
        for key, by_length in points.items():
            shortest, longest = converged_length(by_length), max(by_length)
            verdict = (f'the shortest schedule within {CONVERGED_WITHIN} '
                       f'points of its longest measured ({longest} epochs) '
                       f'is {shortest} epochs.' if shortest is not None else
                       f'one length measured so far ({longest} epochs), no '
                       'curve yet.')
            lines.append(f'- {methods[key].label}: {verdict}')
    else:
        lines += method_table(bench.results, rows, baselines, seeds, methods,
                              brief)
        paired = (
            'Mean ± std over the seeds with a run; "vs": the mean ± std of '
            'each seed\'s top-1 minus the baseline\'s with the same seed, t: '
            'that mean over its standard error, beyond the noise when the '
            'two-sided paired t-test gives p < 0.05 (|t| >= 2.78 for 5 '
            'seeds, 4.30 for 3).')
        columns = (
            ' Agree mean: top-1 agreement with the teacher at the boundary '
            '(t = 0.5, 1, 1.5; docs/method.md); test agree: on the clean '
            'test images; missed: % of the test images the teacher gets '
            'right and the student wrong, what following the teacher could '
            'still add to top-1 (a count in brackets: only that many seeds '
            'were tested since the figure existed).')
        lines += ['', paired + ('' if brief else columns)]
    lines += ['', f'Seeds {list(seeds)}; trained on {", ".join(machines)}, '
              + ', '.join(f'{j} at a time with {t} torch thread(s) each'
                          for j, t in loads) +
              ('; the time ratios are of runs sharing the cores, not alone.'
               if any(j > 1 for j, _ in loads) and not brief else '.')]
    return '\n'.join(lines)
