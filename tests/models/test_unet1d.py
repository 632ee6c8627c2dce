import pytest
import torch
from torch import nn

from robot_rl.models.unet1d import ConditionalUnet1D
from robot_rl.models.vision import RandomCrop, ResNet18Encoder


def test_unet_maps_sequences_to_the_same_shape_and_uses_the_condition():
    torch.manual_seed(0)
    net = ConditionalUnet1D(7, global_cond_dim=10, step_embed_dim=16, down_dims=(16, 32, 64), n_groups=4)
    x, t = torch.randn(2, 16, 7), torch.tensor([3, 50])
    a = net(x, t, torch.zeros(2, 10))
    b = net(x, t, torch.ones(2, 10))
    assert a.shape == (2, 16, 7)
    assert not torch.allclose(a, b), "FiLM conditioning has no effect"
    assert not torch.allclose(net(x, torch.tensor([0, 0]), torch.zeros(2, 10)), a), "timestep has no effect"
    with pytest.raises(ValueError, match="divisible"):
        net(torch.randn(1, 10, 7), torch.tensor([1]), torch.zeros(1, 10))


def test_image_encoder_has_no_batchnorm_and_crops_randomly_only_in_training():
    enc = ResNet18Encoder((24, 24), feature_dim=8)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in enc.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in enc.modules())
    crop = RandomCrop((4, 4))
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(1, 2, 8, 8).repeat(16, 1, 1, 1)
    train = crop.train()(x)
    assert train.shape == (16, 2, 4, 4)
    assert len({tuple(c.flatten().tolist()) for c in train}) > 1, "every sample got the same crop"
    centre = crop.eval()(x)
    torch.testing.assert_close(centre[0], x[0, :, 2:6, 2:6])
    images = torch.randint(0, 255, (3, 32, 32, 3), dtype=torch.uint8)
    assert enc.eval()(images).shape == (3, 8)
    with pytest.raises(ValueError, match="uint8"):
        enc(images.float())
