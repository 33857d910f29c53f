# Boundary samples made online with the first-order step solved within the
# pixel box (step='newton_box'), at most 2 steps; samples that cross stop.
# The online fallback where no bank fits: tools/analysis/benchmark_step.py
# measures its cost and share past the boundary together (docs/cost.md).
model = dict(
    boundary=dict(
        type='OnlineBoundary',
        attack=dict(step='newton_box', max_steps=2)))
