# The Fashion-MNIST teacher recipe, sized for a 2-core CPU (about 15 min
# for a ResNet20): 6 epochs of SGD on the 60,000 images, lr 0.05 decayed
# x0.1 at epochs 4 and 5.
_base_ = ['./cifar_kd_240e.py']
param_scheduler = dict(milestones=[4, 5])
train_cfg = dict(max_epochs=6)
