# Copyright (c) amkd-mmrazor contributors.
"""Teacher checkpoints in the CIFAR-100 KD benchmark's released format.

The files are written here the way RepDistiller's ``train_teacher.py``
writes ``ckpt_epoch_240.pth``: ``{'epoch', 'model', 'accuracy',
'optimizer'}``, the network's own parameter names (our classifier's names
with ``backbone.`` stripped and the head renamed to the network's
classifier), built from this project's own networks. The tools' end-to-end
use (training, tools/convert_teacher.py, tools/test.py) is in
test_tools.py.
"""
import copy
import os
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import amkd_plugin  # noqa: F401  (registers the backbones)
from amkd_plugin.apis import (guess_architecture, is_released_checkpoint,
                              load_teacher_checkpoint)
from amkd_plugin.models.backbones.benchmark_names import CLASSIFIER_PREFIXES
from amkd_plugin.utils import UserInputError

pytestmark = pytest.mark.usefixtures('single_torch_thread')

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / 'configs/_base_/models'


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = Config.fromfile(str(MODELS_DIR / f'{name}.py')).model
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    with torch.no_grad():  # running statistics the init leaves at 0 / 1
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2)
    return model.eval()


def released_names(model: torch.nn.Module, name: str,
                   num_batches_tracked: bool = True) -> dict:
    """The model's weights under the benchmark network's names."""
    classifier = CLASSIFIER_PREFIXES[name]
    network = {}
    for key, value in model.state_dict().items():
        if key.endswith('num_batches_tracked') and not num_batches_tracked:
            continue  # torch < 0.4.1 did not save them
        if key.startswith('head.fc.'):
            network[classifier + key[len('head.fc.'):]] = value
        else:
            network[key[len('backbone.'):]] = value
    return network


def write_released(model: torch.nn.Module, name: str, path: Path,
                   **kwargs) -> str:
    """A ckpt_epoch_240.pth as RepDistiller's train_teacher.py saves it,
    with an optimizer state that holds momentum buffers."""
    trained = copy.deepcopy(model)
    optimizer = torch.optim.SGD(trained.parameters(), lr=1e-9, momentum=0.9)
    trained(torch.zeros(1, 3, 32, 32), mode='tensor').mean().backward()
    optimizer.step()
    torch.save(
        dict(epoch=240, model=released_names(model, name, **kwargs),
             accuracy=torch.tensor(72.34), optimizer=optimizer.state_dict()),
        path)
    return str(path)


def logits(model: torch.nn.Module) -> torch.Tensor:
    images = torch.randn(4, 3, 32, 32,
                         generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model(images, mode='tensor')


@pytest.mark.parametrize('num_batches_tracked', [True, False])
@pytest.mark.parametrize('name', ['resnet56', 'vgg13', 'wrn_40_2'])
def test_released_teacher_gives_the_same_logits(name, num_batches_tracked,
                                                tmp_path, monkeypatch):
    original = build(name)
    expected = logits(original)
    path = write_released(original, name, tmp_path / 'ckpt_epoch_240.pth',
                          num_batches_tracked=num_batches_tracked)
    logged = []
    monkeypatch.setattr(
        'amkd_plugin.checkpoints.loading.print_log',
        lambda message, *args: logged.append(message))
    teacher = build(name)
    torch.nn.init.zeros_(teacher.head.fc.weight)  # differs before loading

    load_teacher_checkpoint(teacher, path, f'configs/teachers/{name}.py')

    assert torch.equal(logits(teacher.eval()), expected)
    assert logged == [
        f'Teacher checkpoint {path}: the CIFAR KD benchmark\'s format '
        '(RepDistiller; epoch 240, accuracy 72.34), mapped to the '
        'classifier\'s parameter names.'
    ]


def test_our_checkpoints_are_not_taken_for_released_ones():
    assert not is_released_checkpoint(dict(state_dict={}, meta={}))
    assert not is_released_checkpoint(dict(model='resnet56'))
    assert is_released_checkpoint(dict(model={}, epoch=240))


def test_another_architecture_is_named(tmp_path):
    path = write_released(build('resnet110'), 'resnet110',
                          tmp_path / 'ckpt_epoch_240.pth')
    with pytest.raises(UserInputError) as info:
        load_teacher_checkpoint(build('resnet56'), path,
                                'configs/teachers/resnet56_cifar100.py')
    message = str(info.value)
    assert message.startswith(f'Checkpoint {path} does not fit the teacher')
    assert "It looks like the benchmark's resnet110: its model config is " \
        'configs/_base_/models/resnet110.py.' in message
    assert '\n' not in message


@pytest.mark.parametrize('name', ['shufflenetv1', 'mobilenetv2', 'vgg8'])
def test_guess_architecture(name):
    assert guess_architecture(released_names(build(name), name)) == name


def test_nothing_is_guessed_for_an_unknown_network():
    network = {'encoder.weight': torch.zeros(3, 3), 'fc.bias': torch.zeros(7)}
    assert guess_architecture(network) is None


def test_a_released_file_with_code_is_refused(tmp_path):
    class Payload:

        def __reduce__(self):
            return (os.system, (f'touch {tmp_path}/ran',))

    path = tmp_path / 'ckpt_epoch_240.pth'
    model = build('resnet8')
    torch.save(dict(epoch=240, model=released_names(model, 'resnet8'),
                    opt=Payload()), path)
    with pytest.raises(UserInputError, match='could run code'):
        load_teacher_checkpoint(model, str(path), None)
    assert not (tmp_path / 'ran').exists()
