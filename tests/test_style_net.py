import pytest
import torch
from torch import nn

from models.style_net import ARCHS, StyleNet, one_hot


def _randomise_styles(net: StyleNet, seed: int = 0) -> StyleNet:
    """Give every style its own scale and shift, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.25 * torch.randn(p.shape, generator=g))
            elif name.endswith("norm.bias"):
                p.copy_(0.25 * torch.randn(p.shape, generator=g))
    return net.eval()


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("hw", [(64, 64), (61, 93), (240, 320)])
def test_output_keeps_size_and_range(arch, hw):
    torch.manual_seed(0)
    net = StyleNet(arch).eval()
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert y.dtype == torch.float32
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    assert (y[0] - y[1]).abs().max() > 1e-3  # depends on its input


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_no_transposed_convolutions(arch):
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in StyleNet(arch).modules())


def _multiply_adds(net: nn.Module, hw: tuple[int, int]) -> int:
    total = 0

    def hook(m, inp, out):
        nonlocal total
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        total += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.rand(1, 3, *hw))
    for h in handles:
        h.remove()
    return total


def test_johnson_size_matches_the_paper():
    """32-64-128 channels, 5 residual blocks: about 11.8 G multiply-adds at 320x240."""
    net = StyleNet("johnson")
    assert abs(_multiply_adds(net, (240, 320)) / 1e9 - 11.8) < 0.3
    assert sum(isinstance(m, nn.ReflectionPad2d) or getattr(m, "padding_mode", "") == "reflect"
               for m in net.modules()) > 10
    assert len(net.res) == 5


def test_lite_is_much_cheaper():
    assert _multiply_adds(StyleNet("lite"), (240, 320)) < _multiply_adds(StyleNet("johnson"), (240, 320)) / 5


@pytest.mark.parametrize("arch", ["c32", "lite", "tiny"])
def test_the_cpu_networks_pad_by_reflection_so_they_need_no_margin(arch):
    """Every padding of the CPU networks mirrors the image: no zeros tell them where the border is."""
    convs = [m for m in StyleNet(arch).modules() if isinstance(m, nn.Conv2d) and m.padding != (0, 0)]
    assert convs and all(m.padding_mode == "reflect" for m in convs)


def test_c32_has_32_channels_throughout_between_lite_and_johnson():
    net = StyleNet("c32")
    assert {m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)} == {32, 3}
    cost = _multiply_adds(net, (240, 320))
    assert _multiply_adds(StyleNet("lite"), (240, 320)) < cost < _multiply_adds(StyleNet("johnson"), (240, 320)) / 3


def test_conditional_blend_lies_between_the_styles():
    torch.manual_seed(0)
    net = _randomise_styles(StyleNet("lite", num_styles=3))
    x = torch.rand(1, 3, 64, 80)
    with torch.no_grad():
        a = net(x, one_hot(0, 3))
        b = net(x, one_hot(1, 3))
        mix = net(x, torch.tensor([[0.5, 0.5, 0.0]]))
    d_ab = (a - b).abs().mean()
    assert d_ab > 0.01  # one-hot outputs differ
    assert (mix - a).abs().mean() > 0.1 * d_ab and (mix - b).abs().mean() > 0.1 * d_ab
    assert (mix - a).abs().mean() < d_ab and (mix - b).abs().mean() < d_ab
    # and near the path between them, not off to a third look
    assert (mix - a).abs().mean() + (mix - b).abs().mean() < 1.5 * d_ab


def test_instance_norm_applies_scale_and_shift_per_sample():
    """Each sample of a batch gets its own style blend, and one style matches the plain layer."""
    from models.style_net import ConditionalInstanceNorm2d

    torch.manual_seed(0)
    norm = ConditionalInstanceNorm2d(4, num_styles=3)
    with torch.no_grad():
        norm.weight.copy_(1 + torch.randn(3, 4))
        norm.bias.copy_(torch.randn(3, 4))
    x = torch.randn(2, 4, 5, 6) * 3 + 1
    w = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    together = norm(x, w)
    for i in range(2):
        scale, shift = w[i] @ norm.weight, w[i] @ norm.bias
        plain = torch.nn.functional.instance_norm(x[i:i + 1], eps=1e-5)
        expected = plain * scale[None, :, None, None] + shift[None, :, None, None]
        assert torch.allclose(together[i:i + 1], expected, atol=1e-5)
        assert torch.allclose(norm(x[i:i + 1], w[i:i + 1]), expected, atol=1e-5)
    single = ConditionalInstanceNorm2d(4, num_styles=1)
    with torch.no_grad():
        single.weight.copy_(norm.weight[:1])
        single.bias.copy_(norm.bias[:1])
    assert torch.allclose(single(x, None), norm(x, w[:1].expand(2, 3)), atol=1e-5)


def test_conditional_net_requires_style_weights():
    with pytest.raises(ValueError, match="style_weights"):
        StyleNet("lite", num_styles=2)(torch.rand(1, 3, 32, 32))


def test_unknown_arch_is_a_clear_error():
    with pytest.raises(ValueError, match="johnson"):
        StyleNet("huge")
