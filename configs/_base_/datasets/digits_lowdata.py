# The low-data digits proxy: a stratified, seeded 20% of the digits
# training split (269 images), where teachers and students stay below 100%
# on the held-out split and the boundary has more to transfer. The
# held-out split is the whole one, as for digits.py.
_base_ = ['./digits.py']
train_dataloader = dict(dataset=dict(train_fraction=0.2))
