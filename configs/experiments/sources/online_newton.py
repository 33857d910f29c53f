# Boundary samples made online with the default's first-order step, at
# most 3 steps: the digits teacher is crossed in about two, the
# Fashion-MNIST teacher for a third of the samples (docs/cost.md).
model = dict(boundary=dict(type='OnlineBoundary', attack=dict(max_steps=3)))
