# Boundary samples made online with the first-order step solved within the
# pixel box (step='newton_box'), one step: the online fallback where no
# bank fits, at 1.42x a stock KD step with 21% of the samples past the
# Fashion-MNIST teacher's boundary (2 steps: 1.62x, 55%; 10: 2.04x, 100%;
# tools/analysis/benchmark_step.py, docs/cost.md).
model = dict(
    boundary=dict(
        type='OnlineBoundary',
        attack=dict(step='newton_box', max_steps=1)))
