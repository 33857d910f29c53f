# Copyright (c) amkd-mmrazor contributors.
"""Comparing methods: the methods file, the metrics files, the statistics
of the tables and the curve (amkd_plugin.apis.compare)."""
import json
import math
import re
import shlex
import statistics
import sys

import pytest
from helpers import REPO, assert_ok, run

from amkd_plugin.apis import compare
from amkd_plugin.apis.compare import Benchmark, Run
from amkd_plugin.utils import UserInputError
from amkd_plugin.utils.fragments import merge_fragments

METHODS = compare.load_methods(str(REPO / compare.METHODS_FILE))
FMNIST = 'resnet20_resnet8_fashion_mnist_lowdata'
COSINE = 'configs/experiments/schedule/cosine.py'


def test_paired_t_is_mean_over_standard_error():
    differences = [1.0, 2.0, 0.5, 1.5, 1.0]
    expected = statistics.mean(differences) / (
        statistics.stdev(differences) / math.sqrt(5))
    assert compare.paired_t(differences) == pytest.approx(expected)
    # 1.2 +- 0.57 over 5 seeds: beyond the 2.78 of p < 0.05.
    assert compare.verdict(compare.paired_t(differences), 5).endswith(
        '(beyond noise)')
    t = compare.paired_t([0.4, -0.6, 0.2, 0.9, -0.3])
    assert t < 2.78
    assert compare.verdict(t, 5).endswith('(noise)')


def test_paired_t_without_spread_or_enough_seeds():
    assert compare.paired_t([None, None]) is None
    assert compare.paired_t([0.3]) is None
    assert compare.paired_t([0., 0.]) is None
    assert compare.paired_t([0.5, 0.5]) == math.inf
    assert compare.paired_t([-0.5, -0.5, None]) == -math.inf
    # Top-1 as two metrics files keep it: 91.15 - 90.85, 91.23 - 90.93.
    float32 = [91.1500015258789 - 90.8499984741211,
               91.22999572753906 - 90.93000030517578]
    assert float32[0] != float32[1]
    assert compare.paired_t(float32) == math.inf
    assert compare.verdict(None, 5) == '-'


def test_the_critical_values_are_the_t_distribution_s():
    """Two-sided p = 0.05 with n - 1 degrees of freedom."""
    scipy_stats = pytest.importorskip('scipy.stats')
    for n, critical in compare.T_CRITICAL.items():
        assert scipy_stats.t.ppf(0.975, n - 1) == pytest.approx(
            critical, abs=0.005)


def test_a_spec_names_its_own_lengths():
    assert compare.parse_spec('kd@15,60', [20]) == [('kd', 15), ('kd', 60)]
    assert compare.parse_spec('amkd', [30, 60]) == [('amkd', 30),
                                                    ('amkd', 60)]


def test_the_converged_length_is_the_shortest_near_the_longest():
    by_length = {15: [84.0, 85.0], 30: [88.0, 88.2], 60: [89.5, 89.9],
                 120: [89.8, 90.0]}
    # 120's mean is 89.9: 60's (89.7) is within 0.3, 30's (88.1) is not.
    assert compare.converged_length(by_length) == 60
    assert compare.converged_length(by_length, tolerance=2.0) == 30
    assert compare.converged_length({}) is None
    assert compare.converged_length({240: [90.0, 90.2]}) is None


def benchmark_script_runs() -> set:
    """The (pair, method spec, teacher) of every ``compare`` call of the
    benchmark script, its variables and arrays expanded."""
    script = (REPO / 'scripts/benchmark_fashion_mnist.sh').read_text()
    words = dict(re.findall(r'^(\w+)=([\w./-]+)$', script, re.M))
    arrays = {name: body.split() for name, body in
              re.findall(r'^(\w+)=\(([^)]*)\)', script, re.M)}
    runs = set()
    for call in re.findall(r'^ *compare (.*)$',
                           script.replace('\\\n', ' '), re.M):
        tokens = [words.get(t[1:], t) if t.startswith('$') else t
                  for t in call.split()]
        _, pair, teacher = tokens[:3]
        specs = []
        for token in tokens[tokens.index('--methods') + 1:]:
            if token.startswith('--'):
                break
            array = re.fullmatch(r'"\$\{(\w+)\[@\]\}"', token)
            specs += arrays[array.group(1)] if array else [token]
        runs |= {(pair, spec, teacher) for spec in specs}
    return runs


def test_the_fashion_mnist_benchmark_has_every_config():
    """Every method the benchmark script runs is in the methods file, its
    config and fragments exist for the pair it runs on and merge with the
    benchmark's cosine schedule, and its teacher has a config."""
    runs = benchmark_script_runs()
    keys = {(pair, spec.partition('@')[0], teacher)
            for pair, spec, teacher in runs}
    assert {(FMNIST, key, 'resnet20_fashion_mnist')
            for key in ('kd', 'kd_fm', 'amkd', 'student', 'kd_ls', 'dkd',
                        'bss')} <= keys
    assert {pair for pair, _, _ in keys} == {
        FMNIST, 'resnet20_mobilenetv2_fashion_mnist_lowdata',
        'wrn_16_2_resnet8_fashion_mnist_lowdata'}
    for pair, key, teacher in sorted(keys):
        assert (REPO / f'configs/teachers/{teacher}.py').is_file(), teacher
        config, fragments = METHODS[key].files(pair)
        assert (REPO / config).is_file(), config
        for fragment in fragments:
            assert (REPO / fragment).is_file(), fragment
        cfg = merge_fragments(str(REPO / config),
                              [str(REPO / f) for f in [*fragments, COSINE]])
        assert cfg.param_scheduler == dict(
            type='CosineAnnealingLR', by_epoch=True,
            convert_to_iter_based=True, eta_min=0)


@pytest.mark.parametrize('method',
                         sorted(m for m in METHODS if 'amkd' in m))
def test_every_amkd_method_is_the_pair_with_fragments(method):
    """On the digits pair (every study ran there), each AMKD method is
    the pair with its fragments merged."""
    config, fragments = METHODS[method].files('resnet20_resnet8_digits')
    cfg = merge_fragments(str(REPO / config),
                          [str(REPO / f) for f in fragments])
    assert cfg.model.type == 'AMKDDistill'
    assert cfg.model.boundary.type in ('BankedBoundary', 'OnlineBoundary')


def test_function_matching_kd_is_stock_kd_on_mixed_batches():
    cfg = merge_fragments(str(REPO / METHODS['kd_fm'].files(FMNIST)[0]), [])
    kd = merge_fragments(str(REPO / METHODS['kd'].files(FMNIST)[0]), [])
    assert cfg.model.type == kd.model.type == 'SingleTeacherDistill'
    assert cfg.model.distiller == kd.model.distiller
    assert [a['type'] for a in cfg.data_preprocessor.batch_augments.augments
            ] == ['Mixup', 'CutMix']
    assert cfg.model.architecture.head.loss.use_soft


def bench(tmp_path, **kwargs) -> Benchmark:
    return Benchmark(FMNIST, 'teacher.pth', str(tmp_path / 'results'),
                     str(tmp_path / 'work'), methods=METHODS, **kwargs)


def test_a_run_s_plan_pairs_its_seed(tmp_path):
    b = bench(tmp_path, fragments=[COSINE])
    plan = b.plan(Run('kd', 60, 3))
    assert plan['config'] == f'configs/kd/{FMNIST}.py'
    assert plan['fragments'] == [COSINE]
    assert plan['options'] == ['model.teacher_ckpt=teacher.pth',
                               'randomness.seed=3']
    assert plan['work_dir'].endswith('work/kd_e60_s3')
    # A student alone has no teacher to name.
    assert b.plan(Run('student', 60, 3))['options'] == ['randomness.seed=3']
    with pytest.raises(UserInputError, match="No method 'kdd'"):
        b.plan(Run('kdd', 60, 0))


def recorded_options(command: str) -> tuple:
    """The teacher and the benchmark-wide ``--cfg-options`` of a recorded
    train command (those a run's plan adds itself left out)."""
    words = shlex.split(command)
    options = words[words.index('--cfg-options') + 1:]
    teacher = [o.partition('=')[2] for o in options
               if o.startswith('model.teacher_ckpt=')]
    own = ('model.teacher_ckpt=', 'randomness.seed=', 'train_cfg.max_epochs=',
           'model.boundary.attack.seed=')
    return (teacher[0] if teacher else '',
            [o for o in options if not o.startswith(own)])


def test_every_measured_run_still_resolves_as_it_was_trained():
    """A method's key names what was measured: each committed metrics file's
    config hash is what the methods file resolves that run to today, so
    moving a default cannot relabel a measured row. The Fashion-MNIST
    benchmark merges the cosine schedule after each method's fragments
    (scripts/benchmark_fashion_mnist.sh). Runs trained from uncommitted
    code may differ: no commit holds what they ran."""
    files = sorted((REPO / 'results').glob('**/e*_s*.json'))
    assert len(files) > 150
    differ = []
    for path in files:
        metrics = json.loads(path.read_text())
        teacher, options = recorded_options(metrics['command'])
        bench = Benchmark(metrics['pair'], teacher, '', '', [COSINE],
                          options, methods=METHODS)
        run = Run(metrics['method'], metrics['epochs'], metrics['seed'])
        if (bench.config_hash(run) != metrics['config_sha256']
                and not metrics['commit'].endswith('-dirty')):
            differ.append(str(path.relative_to(REPO)))
    assert differ == []


def test_the_config_hash_follows_the_resolved_config(tmp_path):
    b = bench(tmp_path, fragments=[COSINE])
    first = b.config_hash(Run('kd', 60, 0))
    assert first == b.config_hash(Run('kd', 60, 0))
    assert first != b.config_hash(Run('kd', 120, 0))
    assert first != b.config_hash(Run('kd', 60, 1))
    assert first != bench(tmp_path).config_hash(Run('kd', 60, 0))
    # The work dir is where, not what: it is left out.
    other = bench(tmp_path / 'elsewhere', fragments=[COSINE])
    assert first == other.config_hash(Run('kd', 60, 0))


def write_metrics(results, method, epochs, seed, top1, seconds=100.0,
                  agree=50.0, commit='abc', missed=None):
    path = results / method / f'e{epochs}_s{seed}.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    # Runs tested before the clean figures existed have no `missed`.
    clean = {} if missed is None else dict(agree_clean=96.0, missed=missed)
    path.write_text(json.dumps(dict(
        method=method, epochs=epochs, seed=seed, top1=top1, top5=99.0,
        fidelity=dict(agree_mean=agree, **{'kl_t1.0': 0.5}, **clean),
        train_seconds=seconds, load=dict(jobs=2, threads=1),
        machine='a CPU (2 logical CPUs)', commit=commit)))


def test_the_table_pairs_seeds_and_counts_missing_runs(tmp_path):
    results = tmp_path / 'results'
    for seed, (kd, amkd) in enumerate([(89.0, 90.0), (89.5, 90.0),
                                       (90.0, 91.0)]):
        write_metrics(results, 'kd', 60, seed, kd)
        write_metrics(results, 'amkd', 120, seed, amkd, seconds=120.0,
                      missed=2.0 + seed)
        write_metrics(results, 'kd', 120, seed, kd + 0.25,
                      missed=1.0 if seed else None)
    write_metrics(results, 'student', 60, 0, 85.0)
    lines = compare.method_table(
        str(results), [('kd', 60), ('amkd', 120), ('student', 60)],
        [('kd', 60)], [0, 1, 2], METHODS)
    rows = {line.split(' | ')[0][2:]: line.split(' | ') for line in lines[2:]}
    amkd = rows[METHODS['amkd'].label]
    # Differences 1.0, 0.5, 1.0: mean 0.83, std 0.29, t = 5.0 > 4.30.
    assert amkd[:5] == [f'| {METHODS["amkd"].label}', '120', '3/3',
                        '90.33 ± 0.58', '99.00 ± 0.00']
    assert amkd[5] == '0.83 ± 0.29'
    assert amkd[6] == '5.00 (beyond noise)'
    # Clean agreement and missed (2, 3, 4), then time over KD's at the same
    # length and seed: 120 / 100.
    assert amkd[-3:-1] == ['96.00 ± 0.00', '3.00 ± 1.00']
    assert amkd[-1].startswith('1.20 ± 0.00')
    assert rows['KD'][-3:-1] == ['n/a', 'n/a']
    # Two of three seeds have the figure: the count says so.
    kd120 = compare.method_table(str(results), [('kd', 120)], [('kd', 60)],
                                 [0, 1, 2], METHODS)[2].split(' | ')
    assert kd120[-3:-1] == ['96.00 ± 0.00 (2)', '1.00 ± 0.00 (2)']
    student = rows['Student alone']
    assert student[2:6] == ['1/3', '85.00', '99.00', '-4.00']
    assert rows['KD'][5:7] == ['-', '-']


def test_a_brief_table_keeps_the_headline_columns(tmp_path):
    results = tmp_path / 'results'
    for seed, (kd, amkd) in enumerate([(89.0, 90.0), (89.5, 90.0)]):
        write_metrics(results, 'kd', 60, seed, kd)
        write_metrics(results, 'amkd', 60, seed, amkd)
    lines = compare.method_table(str(results), [('kd', 60), ('amkd', 60)],
                                 [('kd', 60)], [0, 1], METHODS, brief=True)
    assert lines[0] == ('| method | seeds | top-1 (%) | vs KD @60 (points) '
                        '| t |')
    assert lines[1] == '|---|---|---|---|---|'
    # The label up to its colon; differences 1.0 and 0.5.
    assert lines[3] == (f'| {METHODS["amkd"].label.split(":")[0]} | 2/2 | '
                        '90.00 ± 0.00 | 0.75 ± 0.35 | 3.00 (noise) |')


def test_folders_pair_one_method_s_runs_by_seed(tmp_path):
    """The same runs at two commits: each folder's row pairs its seeds
    with the first folder's; a seed missing in either is left out."""
    first, second = tmp_path / 'float32', tmp_path / 'int8'
    for seed, (a, b) in enumerate([(91.0, 90.5), (90.8, 90.5),
                                   (90.6, None)]):
        write_metrics(first, 'amkd', 120, seed, a, commit='aaa')
        if b is not None:
            write_metrics(second, 'amkd', 120, seed, b, commit='bbb')
    lines = compare.folders_table([str(first), str(second)], ('amkd', 120),
                                  [0, 1, 2])
    head, reference, other = (line.split(' | ') for line in
                              (lines[0], lines[2], lines[3]))
    assert head[2:5] == ['seed 0', 'seed 1', 'seed 2']
    assert reference[1:] == ['aaa', '91.00', '90.80', '90.60',
                             '90.80 ± 0.20', '-', '- |']
    # Differences -0.5 and -0.3: mean -0.40, std 0.14, t = -4.0 (< 12.71).
    assert other[1:] == ['bbb', '90.50', '90.50', '-', '90.50 ± 0.00',
                         '-0.40 ± 0.14', '-4.00 (noise) |']


def test_the_curve_is_drawn_from_the_files(tmp_path):
    results = tmp_path / 'results'
    for seed in (0, 1):
        for epochs, top1 in ((15, 84.0), (60, 89.0), (120, 89.2)):
            write_metrics(results, 'kd', epochs, seed, top1 + seed)
    write_metrics(results, 'kd', 60, 7, 10.0)  # not one of the seeds
    points = compare.curve(str(results), ['kd', 'amkd'], [0, 1])
    assert set(points) == {'kd'}
    assert {e: sorted(v) for e, v in points['kd'].items()} == {
        15: [84.0, 85.0], 60: [89.0, 90.0], 120: [89.2, 90.2]}
    assert compare.converged_length(points['kd']) == 60
    table = compare.curve_table(points, METHODS)
    assert table[0] == '| method | 15 epochs | 60 epochs | 120 epochs |'
    assert '84.50 ± 0.71 (2)' in table[2]
    figure = tmp_path / 'curve.png'
    compare.draw_curve(points, METHODS, str(figure), 'title')
    assert figure.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_the_curve_section_names_its_data_and_its_rule(tmp_path,
                                                      monkeypatch):
    # The 2% curve trains the 5% pair's config on another fraction: the
    # figure's title must say so, not the pair alone.
    titles = []
    monkeypatch.setattr(compare, 'draw_curve',
                        lambda *args: titles.append(args[-1]))
    b = bench(tmp_path,
              cfg_options=['train_dataloader.dataset.fraction=0.02'])
    for epochs, top1 in ((240, 90.0), (480, 90.8), (960, 91.0)):
        write_metrics(tmp_path / 'results', 'kd', epochs, 0, top1)
    text = compare.report(b, [('kd', 240)], [0], [], 'cmd',
                          figure=str(tmp_path / 'curve.png'))
    assert titles == [f'{FMNIST}: test top-1 against schedule length\n'
                      'train_dataloader.dataset.fraction=0.02']
    assert (f'- KD: the shortest schedule within {compare.CONVERGED_WITHIN} '
            'points of its longest measured (960 epochs) is 480 epochs.'
            ) in text.splitlines()


def test_a_section_without_runs_says_so_and_draws_nothing(tmp_path):
    b = bench(tmp_path)
    figure = tmp_path / 'curve.png'
    text = compare.report(b, [('kd', 60)], [0, 1], [('kd', 60)], 'cmd',
                          figure=str(figure))
    assert text.splitlines()[0].endswith('(0 runs).')
    assert text.splitlines()[-1] == 'Seeds [0, 1]: no run yet.'
    assert not figure.exists()


def test_a_failed_run_stops_the_runs_not_started(tmp_path, monkeypatch):
    started = []

    def fake(bench, run):
        started.append(run)
        if run.epochs == 2:
            raise RuntimeError('exit 1')
        return {}

    monkeypatch.setattr(compare, 'train_run', fake)
    runs = [Run('kd', e, 0) for e in (1, 2, 3, 4)]
    with pytest.raises(UserInputError, match='run kd/e2_s0 failed'):
        compare.run_all(bench(tmp_path), runs)
    assert started == runs[:2]


def test_sections_are_replaced_in_place(tmp_path):
    doc = tmp_path / 'results.md'
    doc.write_text('# Results\n\nintro\n')
    compare.write_section('first', str(doc), 'curve')
    compare.write_section('other', str(doc), 'table')
    compare.write_section('second', str(doc), 'curve')
    assert doc.read_text() == (
        '# Results\n\nintro\n\n<!-- section curve -->\nsecond\n'
        '<!-- end curve -->\n\n<!-- section table -->\nother\n'
        '<!-- end table -->\n')
    # A name there twice: either could be meant, so neither is touched.
    doc.write_text(doc.read_text() * 2)
    before = doc.read_text()
    with pytest.raises(UserInputError, match="section 'curve' more than"):
        compare.write_section('third', str(doc), 'curve')
    assert doc.read_text() == before


def test_every_written_section_of_the_docs_is_there_once():
    for doc in ('docs/results.md', 'README.md'):
        names = re.findall(r'^<!-- section (\S+) -->$',
                           (REPO / doc).read_text(), re.M)
        assert names and len(names) == len(set(names)), doc


@pytest.mark.slow
def test_compare_trains_writes_metrics_and_reuses_them(
        fashion_mnist_root, tmp_path):
    """The tool on tiny Fashion-MNIST files: a teacher, then one epoch of
    KD and of the student alone under the cosine schedule; each run's
    metrics file, then a second call that trains nothing."""
    data = [f'{loader}_dataloader.dataset.data_root={fashion_mnist_root}'
            for loader in ('val', 'test')]
    teacher = tmp_path / 'teacher'
    assert_ok(run([
        sys.executable, 'tools/train.py',
        'configs/teachers/resnet20_fashion_mnist.py', '--work-dir', teacher,
        '--cfg-options', 'train_cfg.max_epochs=1',
        'train_dataloader.batch_size=8',
        f'train_dataloader.dataset.data_root={fashion_mnist_root}', *data
    ]))
    command = [
        sys.executable, 'tools/analysis/compare_methods.py', '--pair', FMNIST,
        '--teacher-ckpt', teacher / 'epoch_1.pth', '--work-dir',
        tmp_path / 'work', '--results', tmp_path / 'results', '--fragments',
        COSINE, '--methods', 'kd@1', 'student@1', '--seeds', '0',
        '--fidelity-images', '10', '--out', tmp_path / 'results.md',
        '--section', 'table', '--cfg-options',
        'train_dataloader.batch_size=16', 'train_dataloader.dataset.'
        f'dataset.data_root={fashion_mnist_root}', *data
    ]
    first = run(command)
    assert_ok(first)
    metrics = json.loads((tmp_path / 'results/kd/e1_s0.json').read_text())
    assert metrics['epochs'] == 1 and metrics['seed'] == 0
    assert 0 <= metrics['top1'] <= metrics['top5'] <= 100
    assert len(metrics['config_sha256']) == 64
    assert metrics['teacher_sha256'] and metrics['train_seconds'] > 0
    assert metrics['command'].startswith(
        f'python tools/train.py configs/kd/{FMNIST}.py --fragments {COSINE}')
    student = json.loads(
        (tmp_path / 'results/student/e1_s0.json').read_text())
    assert student['teacher_sha256'] is None and student['fidelity'] == {}
    section = (tmp_path / 'results.md').read_text()
    assert '| KD | 1 | 1/1 |' in section
    assert 'from the metrics files in' in section
    second = run(command)
    assert_ok(second)
    assert 'tools/train.py' not in second.output

    # A file from before the clean figures: --retest tests the checkpoint
    # again and adds them, top-1 unchanged; with nothing to add, nothing.
    kd_file = tmp_path / 'results/kd/e1_s0.json'
    figures = compare.LATER_FIGURES
    assert figures <= set(metrics['fidelity'])
    older = dict(metrics, fidelity={k: v for k, v in
                                    metrics['fidelity'].items()
                                    if k not in figures})
    kd_file.write_text(json.dumps(older))
    retested = run([*command, '--retest'])
    assert_ok(retested)
    assert 'tools/test.py' in retested.output
    assert 'tools/train.py' not in retested.output
    again = json.loads(kd_file.read_text())
    assert again['fidelity'] == pytest.approx(metrics['fidelity'],
                                              nan_ok=True)
    assert again['retested']['added'] == sorted(figures)
    assert {k: v for k, v in again.items() if k != 'retested'} == {
        **older, 'fidelity': again['fidelity']}
    assert 'tools/test.py' not in run([*command, '--retest']).output

    # A checkpoint that does not give the file's top-1 back: left as it was.
    kd_file.write_text(json.dumps(dict(older, top1=older['top1'] - 1)))
    wrong = run([*command, '--retest'])
    assert wrong.returncode != 0
    assert 'run kd/e1_s0: tested again' in wrong.output
    assert json.loads(kd_file.read_text())['top1'] == older['top1'] - 1
