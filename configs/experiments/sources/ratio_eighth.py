# Boundary samples for at most an eighth of the batch, not a quarter: half
# the boundary pass, which is what a banked step costs above KD's
# (docs/cost.md).
model = dict(boundary=dict(attack=dict(max_ratio=0.125)))
