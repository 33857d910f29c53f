# The student of the pair resnet20_mobilenetv2_fashion_mnist_lowdata
# trained alone (tools/analysis/compare_methods.py finds a pair's configs
# by its name).
_base_ = ['./mobilenetv2_fashion_mnist_lowdata.py']
