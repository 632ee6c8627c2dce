"""Int8 inference copies: the Linear forms of the convolutions are exact, the int8 network stays
close to the float one, and an int8 policy can neither be trained nor saved."""

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

from robot_rl.models.int8 import Conv1dAsLinear, ConvTranspose1dAsLinear, quantize_int8
from robot_rl.models.unet1d import ConditionalUnet1D


@pytest.mark.parametrize(
    "conv_type,as_linear,length,kernel,stride,padding",
    [(nn.Conv1d, Conv1dAsLinear, 16, *k) for k in [(5, 1, 2), (3, 2, 1), (1, 1, 0), (4, 3, 0)]]
    + [
        (nn.ConvTranspose1d, ConvTranspose1dAsLinear, 8, *k)
        for k in [(4, 2, 1), (3, 1, 1), (5, 3, 2), (2, 2, 0)]
    ],
)
def test_convolution_as_linear_computes_the_same_convolution(
    conv_type, as_linear, length, kernel, stride, padding
):
    torch.manual_seed(0)
    conv = conv_type(6, 9, kernel, stride=stride, padding=padding)
    x = torch.randn(3, 6, length)
    torch.testing.assert_close(as_linear(conv)(x), conv(x), rtol=1e-5, atol=1e-5)


def test_convolutions_it_cannot_express_are_refused():
    with pytest.raises(ValueError, match="groups 1"):
        Conv1dAsLinear(nn.Conv1d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="groups 1"):
        Conv1dAsLinear(nn.Conv1d(4, 4, 3, dilation=2))


def test_int8_unet_stays_close_to_the_float_one_and_leaves_it_untouched():
    torch.manual_seed(0)
    net = ConditionalUnet1D(
        7, global_cond_dim=10, step_embed_dim=16, down_dims=(32, 64, 128), n_groups=4
    ).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    q = quantize_int8(net)
    x, t, c = torch.randn(4, 16, 7), torch.tensor([0, 10, 50, 99]), torch.randn(4, 10)
    with torch.inference_mode():
        ref, out = net(x, t, c), q(x, t, c)
    rel = ((out - ref).norm() / ref.norm()).item()
    assert 0 < rel < 0.1, f"int8 output differs from float32 by {rel:.3f} (relative)"
    assert not any(isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)) for m in q.modules())
    convs = [m.linear for m in q.modules() if isinstance(m, (Conv1dAsLinear, ConvTranspose1dAsLinear))]
    assert all(isinstance(c, DynamicQuantizedLinear) for c in convs[:-1]), "a convolution was left in float32"
    assert type(convs[-1]) is nn.Linear, "the output layer should stay float32"
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items()), "the float network changed"
    assert any(isinstance(m, nn.Conv1d) for m in net.modules())


def test_int8_policy_predicts_close_to_the_float_policy_and_cannot_train_or_save(tmp_path):
    from robot_rl import keys
    from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig, ObsFeature, UNetConfig

    torch.manual_seed(0)
    spec = {keys.JOINT_POS: ObsFeature((6,))}
    unet = UNetConfig(down_dims=(32, 64), step_embed_dim=16, n_groups=4)
    policy = DiffusionPolicy(
        DiffusionPolicyConfig(obs_spec=spec, action_dim=7, pred_horizon=8, action_horizon=4, unet=unet)
    ).eval()
    q = policy.quantized_int8()
    obs = {keys.JOINT_POS: torch.randn(5, 2, 6)}
    noise = torch.randn(5, 8, 7)
    ref, out = policy.predict_action(obs, noise=noise), q.predict_action(obs, noise=noise)
    assert out.shape == ref.shape and not torch.equal(out, ref)
    rel = ((out - ref).norm() / ref.norm()).item()
    assert rel < 0.1, f"int8 actions differ from float32 by {rel:.3f} (relative)"
    with pytest.raises(RuntimeError, match="inference copy"):
        q.save(tmp_path / "int8")
    assert not (tmp_path / "int8").exists()
    with pytest.raises(RuntimeError, match="inference copy"):
        q.compute_loss({"obs": obs, keys.ACTION: torch.randn(5, 8, 7)})
    policy.save(tmp_path / "float")  # the policy it came from is still a float32 policy
    assert not policy.int8 and (tmp_path / "float" / "model.safetensors").is_file()
