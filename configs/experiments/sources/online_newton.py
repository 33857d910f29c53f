# Boundary samples made online with the default's first-order step, at
# most 3 steps (on these teachers it crosses in about one to three).
model = dict(boundary=dict(type='OnlineBoundary', attack=dict(max_steps=3)))
