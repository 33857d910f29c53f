#!/usr/bin/env bash
# The Fashion-MNIST benchmark of docs/results.md, resumable: the data, the
# ResNet20 teacher on all 60,000 images, then every method over 5 paired
# seeds on the low-data regime, tabulated into docs/results.md. A run that
# finished (its last checkpoint and test metrics) is reused, so the script
# picks up where a killed one stopped. On a 2-core CPU: about 15 min for
# the teacher, then about 40 CPU-minutes per seed of the 9 methods; two
# trainings at a time. METHODS: a part of them (the table then has those).
# Usage: bash scripts/benchmark_fashion_mnist.sh [METHODS...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -f data/fashion-mnist/t10k-labels-idx1-ubyte ] ||
  bash scripts/get_data.sh fashion-mnist
py=.venv/bin/python
pair=resnet20_resnet8_fashion_mnist_lowdata
teacher=work_dirs/resnet20_fashion_mnist
if [ ! -f $teacher/epoch_6.pth ]; then
  OMP_NUM_THREADS=2 $py tools/train.py configs/teachers/resnet20_fashion_mnist.py \
    --work-dir $teacher
fi
[ -f $teacher/test_metrics.json ] ||
  $py tools/test.py configs/teachers/resnet20_fashion_mnist.py \
    $teacher/epoch_6.pth --out $teacher/test_metrics.json
methods=${*:-student kd kd_ls dkd bss amkd amkd_no_ls amkd_no_ls_ratio1 amkd_no_ls_w025}
# One protocol for both tables: the same teacher, recipe and seeds.
compare() {
  $py tools/analysis/compare_methods.py --pair $pair \
    --teacher-ckpt $teacher/epoch_6.pth --epochs 15 --seeds 0 1 2 3 4 \
    --jobs 2 --threads 1 --fidelity-images 500 --out docs/results.md "$@"
}
compare --work-dir work_dirs/fmnist/$pair --methods $methods \
  --section fashion_mnist
# 2% of the training split, the methods of docs/results.md's second table.
[ $# -gt 0 ] || compare --work-dir work_dirs/fmnist/${pair}_2pct \
  --methods student kd amkd_no_ls_ratio1 \
  --cfg-options train_dataloader.dataset.fraction=0.02 \
  --section fashion_mnist_2pct
# The rows of docs/results.md's third table (the runs of the first reused).
[ $# -gt 0 ] || compare --work-dir work_dirs/fmnist/$pair \
  --methods kd amkd amkd_no_triplet amkd_online_newton amkd_no_ls \
  amkd_no_ls_top3 --section fashion_mnist_rows
