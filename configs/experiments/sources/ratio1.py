# A boundary sample for every image both models get right, not at most a
# quarter of the batch.
model = dict(boundary=dict(attack=dict(max_ratio=1.0)))
