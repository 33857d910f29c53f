#!/usr/bin/env bash
# The Fashion-MNIST benchmark of docs/results.md, resumable: the data, the
# committed ResNet20 teacher (trained on all 60,000 images when it is
# missing), then the runs of each table on the low-data regime (5% of the
# training split), each run's metrics in one file under results/. A run
# whose metrics file exists is not trained again and a run killed part-way
# resumes from its work dir, so the script picks up where it stopped; from
# a clone with every metrics file it only writes the tables. Two trainings
# at a time, one torch thread each.
# Usage: bash scripts/benchmark_fashion_mnist.sh [--report-only]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -f data/fashion-mnist/t10k-labels-idx1-ubyte ] ||
  bash scripts/get_data.sh fashion-mnist
py=.venv/bin/python
pair=resnet20_resnet8_fashion_mnist_lowdata
config=configs/teachers/resnet20_fashion_mnist.py
teacher=results/fashion_mnist/teacher
if [ ! -f $teacher/resnet20_fashion_mnist.pth ]; then
  OMP_NUM_THREADS=2 $py tools/train.py $config \
    --work-dir work_dirs/resnet20_fashion_mnist
  $py tools/convert_teacher.py work_dirs/resnet20_fashion_mnist/epoch_6.pth \
    $teacher/resnet20_fashion_mnist.pth $config
fi
[ -f $teacher/test_metrics.json ] ||
  $py tools/test.py $config $teacher/resnet20_fashion_mnist.pth \
    --work-dir work_dirs/resnet20_fashion_mnist \
    --out $teacher/test_metrics.json
compare() {
  $py tools/analysis/compare_methods.py --pair $pair \
    --teacher-ckpt $teacher/resnet20_fashion_mnist.pth \
    --results results/fashion_mnist/lowdata \
    --work-dir work_dirs/fmnist/lowdata \
    --fragments configs/experiments/schedule/cosine.py \
    --jobs 2 --threads 1 --fidelity-images 500 "$@"
}
# Top-1 against the schedule's length: the benchmark's schedule is the
# shortest whose KD top-1 is within 0.3 points of the longest's.
compare --methods kd@15,30,60,120 amkd@60,120 student@15,30,60,120 \
  kd_fm@15,30,60,120,240 --seeds 0 1 2 \
  --figure docs/figures/fashion_mnist_curve.png \
  --out docs/results.md --section fashion_mnist_curve "$@"
# The methods at the converged schedule (KD's 120 epochs; the function-
# matching ones at function-matching KD's best, 240), 5 paired seeds, paired
# against KD and function-matching KD; the README shows the same table.
table=(student@120 kd@120 kd_fm@240 amkd@120 amkd_no_ls@120 amkd_mixup@240)
compare --methods "${table[@]}" --baselines kd@120 kd_fm@240 \
  --seeds 0 1 2 3 4 "$@"
for out in docs/results.md README.md; do
  compare --methods "${table[@]}" --baselines kd@120 kd_fm@240 \
    --seeds 0 1 2 3 4 --report-only --out $out --section fashion_mnist_patient
done
# The levers of AMKD at the converged schedule (docs/results.md#levers-at-
# the-converged-schedule), paired against KD and function-matching KD.
levers=(amkd_mixup@240 amkd_no_ls_mixup@240 amkd_no_ls_mixup_online@240)
compare --methods "${levers[@]}" --baselines kd@120 kd_fm@240 \
  --seeds 0 1 2 3 4 --out docs/results.md --section fashion_mnist_levers "$@"
