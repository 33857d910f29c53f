# The pair of _base_ without logit standardization, with the teacher's 3
# runner-up classes banked per image: every epoch LoadBoundaryBank draws
# one of them per image (weighted by the teacher's probabilities), so an
# image's boundary sample changes between epochs.
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata_no_ls.py']
model = dict(bank=dict(top_k=3))
