# A bank of the 3 runner-up classes of each image, one drawn per image and
# epoch with the teacher's probabilities as weights.
model = dict(boundary=dict(top_k=3))
