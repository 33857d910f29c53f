# The digits bank with the teacher's 3 runner-up classes banked per image,
# one drawn per step with the teacher's probabilities as weights.
_base_ = ['./resnet20_resnet8_digits.py']
model = dict(bank=dict(top_k=3))
