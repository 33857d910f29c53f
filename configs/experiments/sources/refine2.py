# Up to two refining steps (merge after refine1.py).
model = dict(boundary=dict(refine=dict(max_steps=2)))
