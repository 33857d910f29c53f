# The student of the pair resnet20_resnet8_fashion_mnist_lowdata trained
# alone, the reference of the pair's table (tools/analysis/
# compare_methods.py finds a pair's configs by its name).
_base_ = ['./resnet8_fashion_mnist_lowdata.py']
