"""Inactive filters, pruning them for real, and the sparsity table."""

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import BODYNET_CHOICES, train_settings
from pipeline.errors import InputError
from pipeline.models.bodynet import BodyNet, BodyNetConfig
from pipeline.models.checkpoint import build_model, fit_to_state
from pipeline.models.hourglass import Residual, StackedHourglass
from pipeline.models.selecsls import SelecSLSConfig, SelecSLSMaps
from pipeline.sparsity import cost, table
from pipeline.sparsity.filters import activation_peaks, filter_groups, inactive_filters
from pipeline.sparsity.prune import fold_batchnorm, remove_filters
from pipeline.training.loop import decay_weights, make_optimiser


def small_hourglass(seed=0) -> StackedHourglass:
    """Two stacks, random BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    return randomise_statistics(StackedHourglass(3, 5, stacks=2, features=16, modules=1, depth=2))


def small_selecsls(seed=0) -> SelecSLSMaps:
    """SelecSLS-42 at an eighth of its width as a 2D network, random BatchNorm statistics."""
    torch.manual_seed(seed)
    return randomise_statistics(SelecSLSMaps(3, 5, SelecSLSConfig("42", 0.125), features=16))


def randomise_statistics(net: nn.Module) -> nn.Module:
    """`net` in eval mode, its BatchNorms' statistics and affine parameters drawn at random."""
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.3)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.2)
    return net.eval()


def silence(net: nn.Module, rng: np.random.Generator, share: float = 0.4) -> None:
    """Make a share of every group's filters inactive as training with Adam and L2 does:
    γ ≈ 0, β of either sign (a constant ReLU(β), zero or not)."""
    for group in filter_groups(net):
        chosen = rng.random(group.filters) < share
        group.norm.weight.data[torch.as_tensor(chosen)] = 1e-5


def prune_all(net: nn.Module, inputs: torch.Tensor) -> int:
    groups = filter_groups(net)
    peaks, _ = activation_peaks(net, groups, [{"x": inputs}])
    removed = 0
    for group in groups:
        masks = inactive_filters(group, peaks[group.name])
        removed += remove_filters(group, masks["either"], masks["activation"])
    return removed


def test_every_bottleneck_stem_and_feature_layer_is_a_filter_group():
    net = small_hourglass()
    groups = filter_groups(net)
    residuals = sum(isinstance(m, Residual) for m in net.modules())
    assert len(groups) == 2 * residuals + 1 + 2  # two per bottleneck, the stem, one per stack
    names = [g.name for g in groups]
    assert "stem.0" in names and "features.1.1" in names and len(set(names)) == len(names)
    stem = groups[names.index("stem.0")]
    assert [r.norm is not None for r in stem.readers] == [True, False]  # the residual's BN, its skip


def test_every_selecsls_convolution_is_counted_and_the_one_the_head_alone_reads_is_pruned():
    """Concatenations, sums, grouped and transposed convolutions read the others: counted, kept."""
    net = small_selecsls()
    groups = filter_groups(net)
    convolutions = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(groups) == len(convolutions) - 1  # each but the head
    assert [g.name for g in groups if g.readers is not None] == ["mix.1.0"]
    silence(net, np.random.default_rng(2))
    widths = {g.name: g.filters for g in groups}
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = net(x)[0].clone()
    peaks, order = activation_peaks(net, groups, [{"x": x}])
    assert set(order) == set(widths) and order[0] == "backbone.stem.0"
    inactive = sum(inactive_filters(g, peaks[g.name])["gamma"].sum() for g in groups)
    assert inactive > 0.2 * sum(widths.values())
    removed = prune_all(net, x)
    with torch.no_grad():
        after = net(x)[0]
    assert torch.allclose(before, after, atol=1e-4), float((before - after).abs().max())
    assert removed == widths["mix.1.0"] - net.mix[1][0].out_channels > 0
    assert all(g.filters == widths[g.name] for g in filter_groups(net) if g.name != "mix.1.0")


@pytest.mark.slow
def test_the_analysis_of_a_selecsls_2d_network_counts_its_layers(tiny_clips, tmp_path):
    """BodyNet's 2D network on SelecSLS, analysed as the workflow's `analyse` job does."""
    from pipeline.datasets.surreal import SampleSizes, VoxelSource
    from pipeline.sparsity.analyse import SparsitySettings, analyse
    from pipeline.training.samples import SampleSet, prepare

    count = prepare(tiny_clips[0], "train", SampleSizes(64, 16, 32), "middle", VoxelSource(), tmp_path / "s")
    samples = SampleSet.load(tmp_path / "s")
    assert count == len(samples)
    hourglass = {"stacks": 1, "features": 8, "modules": 1, "depth": 2}
    model = BodyNet(
        BodyNetConfig(64, 16, 32, hourglass=hourglass, **(BODYNET_CHOICES | {"backbone_2d": "selecsls"}))
    ).eval()
    groups = filter_groups(model.pose2d, prefix="pose2d")
    assert len(groups) == sum(isinstance(m, nn.BatchNorm2d) for m in model.pose2d.modules())
    for group in groups[::2]:
        group.norm.weight.data[0] = 0.0  # one filter of every other layer switched off
    filters = sum(g.filters for g in groups)
    settings = SparsitySettings(gamma_threshold=1e-3, activation_threshold=1e-12, activation_samples=4, latency_batch=2)
    result = analyse(model, ["pose2d"], samples, samples, settings, progress=False)
    layers = result.layers.set_index("layer")
    assert len(layers) == len(groups) and (layers["order"] >= 0).all()  # every layer ran and was counted
    assert layers["inactive_gamma"].sum() == len(groups[::2])
    assert set(layers.index[layers["removed"] > 0]) <= {"pose2d.mix.1.0"}
    (network,) = result.networks.to_dict("records")
    assert network["filters"] == filters and network["output_change"] < 1e-4


def test_activation_peaks_follow_the_forward_order_and_find_silent_filters():
    net = small_hourglass()
    group = filter_groups(net)[3]
    group.norm.weight.data[:2] = 0.0
    group.norm.bias.data[:2] = -1.0  # rectified: zero everywhere
    group.norm.running_mean[2:] = -10.0  # the others: positive everywhere
    peaks, order = activation_peaks(net, filter_groups(net), [{"x": torch.randn(2, 3, 32, 32)}])
    assert order[0] == "stem.0" and set(order) == {g.name for g in filter_groups(net)}
    masks = inactive_filters(group, peaks[group.name])
    assert masks["gamma"][:2].all() and masks["activation"][:2].all()
    assert not masks["either"][2:].any()


def test_removing_inactive_filters_leaves_the_outputs_unchanged():
    net = small_hourglass()
    silence(net, np.random.default_rng(1))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        before = [out.clone() for out in net(x)]
    parameters = cost.parameters(net)
    macs = cost.multiply_accumulates(net, (x,))
    removed = prune_all(net, x)
    assert removed > 0.2 * sum(g.filters for g in filter_groups(small_hourglass()))
    with torch.no_grad():
        after = net(x)
    for a, b in zip(before, after):
        assert torch.allclose(a, b, atol=1e-4), float((a - b).abs().max())
    assert cost.parameters(net) < 0.8 * parameters
    assert cost.multiply_accumulates(net, (x,)) < 0.8 * macs


def test_a_constant_filter_read_by_a_3x3_convolution_stays_a_silent_one_goes():
    net = small_hourglass()
    group = next(g for g in filter_groups(net) if g.readers[0].conv.kernel_size == (3, 3))
    group.norm.weight.data[:2] = 0.0
    group.norm.bias.data[:2] = torch.tensor([0.8, -0.8])  # outputs ReLU(0.8) everywhere; zero everywhere
    gone = remove_filters(group, np.arange(group.filters) < 2, np.zeros(group.filters, bool))
    assert gone == 1 and group.norm.bias[0].item() == pytest.approx(0.8)  # zero padding would not see 0.8


def test_at_least_one_filter_stays():
    group = filter_groups(small_hourglass())[1]
    gone = remove_filters(group, np.ones(group.filters, bool), np.ones(group.filters, bool))
    assert gone == 15 and group.filters == group.conv.out_channels == group.norm.num_features == 1


def test_folding_batchnorm_keeps_the_outputs_and_drops_the_layers():
    net = small_hourglass()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = net(x)[-1]
        folded = copy.deepcopy(net)
        count = fold_batchnorm(folded)
        after = folded(x)[-1]
    norms = lambda m: sum(isinstance(k, nn.BatchNorm2d) for k in m.modules())  # noqa: E731
    assert count > 0 and norms(folded) == norms(net) - count
    assert torch.allclose(before, after, atol=1e-4)


def test_a_pruned_checkpoint_loads_into_a_fresh_network(tmp_path):
    config = BodyNetConfig(
        32, 8, 16, hourglass={"stacks": 1, "features": 8, "modules": 1, "depth": 2}, **BODYNET_CHOICES
    )
    model = BodyNet(config).eval()
    silence(model.pose2d, np.random.default_rng(2), share=0.5)
    x = torch.randn(2, 3, 32, 32)
    prune_all(model.pose2d, x)
    path = tmp_path / "pruned.pt"
    torch.save({"config": config.as_dict(), "state": {"pose2d": model.pose2d.state_dict()}, "pruned": True}, path)
    loaded = build_model(config, [path]).eval()
    with torch.no_grad():
        assert torch.equal(loaded.pose2d(x)[-1], model.pose2d(x)[-1])
    torch.save({"config": config.as_dict(), "state": {"pose2d": model.pose2d.state_dict()}}, path)
    with pytest.raises(InputError, match="does not fit this configuration"):  # unpruned: a config mismatch
        build_model(config, [path])


def test_fit_to_state_narrows_only_what_differs():
    net, pruned = small_hourglass(), small_hourglass()
    silence(pruned, np.random.default_rng(3))
    prune_all(pruned, torch.randn(2, 3, 32, 32))
    fit_to_state(net, pruned.state_dict())
    net.load_state_dict(pruned.state_dict())  # strict: every shape agrees
    assert [p.shape for p in net.parameters()] == [p.shape for p in pruned.parameters()]


def test_multiply_accumulates_of_a_convolution_and_a_linear_layer():
    conv = nn.Conv2d(4, 6, 3, padding=1)
    assert cost.multiply_accumulates(conv, (torch.zeros(2, 4, 10, 10),)) == 6 * 10 * 10 * 4 * 9
    linear = nn.Linear(5, 7)
    assert cost.multiply_accumulates(linear, (torch.zeros(3, 5),)) == 35


def test_optimisers_and_weight_decay():
    parameters = [nn.Parameter(torch.ones(3))]
    assert isinstance(make_optimiser(parameters, train_settings()), torch.optim.RMSprop)
    adam = make_optimiser(parameters, train_settings(optimiser="adam", weight_decay=1e-3))
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["weight_decay"] == 1e-3
    sgd = make_optimiser(parameters, train_settings(optimiser="sgd", weight_decay=1e-3, decay="decoupled"))
    assert sgd.param_groups[0]["weight_decay"] == 0 and sgd.param_groups[0]["momentum"] == 0.9
    decoupled = train_settings(learning_rate=0.1, weight_decay=0.5, decay="decoupled", iterations=10, lr_drop=0.5)
    decay_weights(parameters, decoupled, iteration=0)  # θ(1 − s·λ): the schedule's s = 1, not the rate
    assert torch.allclose(parameters[0], torch.full((3,), 0.5))
    decay_weights(parameters, decoupled, iteration=5)  # after the drop, s = 0.1
    assert torch.allclose(parameters[0], torch.full((3,), 0.5 * 0.95))
    decay_weights(parameters, train_settings(weight_decay=0.5, decay="l2"), iteration=0)  # the optimiser's job
    assert torch.allclose(parameters[0], torch.full((3,), 0.5 * 0.95))
    with pytest.raises(InputError, match="optimiser must be one of"):
        make_optimiser(parameters, train_settings(optimiser="lbfgs"))


def _analysis(trains, removed, optimiser="adam", weight_decay=1e-3):
    layers = [
        {
            "network": "pose2d",
            "layer": f"l{k}",
            "order": 2 - k,
            "filters": 10,
            "inactive_gamma": r,
            "inactive_activation": r,
            "inactive": r,
            "removed": r,
        }
        for k, r in enumerate(removed)
    ]
    network = {
        "network": "pose2d",
        "filters": 30,
        "inactive_gamma": sum(removed),
        "inactive_activation": 0,
        "removed": sum(removed),
        "parameters_before": 1000,
        "parameters_after": 600,
        "macs_before": 5000,
        "macs_after": 2500,
        "latency_ms_before": 4.0,
        "latency_ms_folded": 3.0,
        "latency_ms_after": 2.0,
        "measure": "pckh",
        "before": 0.5,
        "after": 0.49,
        "output_change": 1e-6,
    }
    return {
        "trains": trains,
        "train": {"optimiser": optimiser, "weight_decay": weight_decay, "decay": "l2"},
        "networks": [network],
        "layers": layers,
        "sparsity_run_id": "s",
        "trained_run_id": "t",
    }


def test_the_table_lists_layers_in_forward_order_and_only_networks_a_stage_trained():
    frame = table.build(
        {"study/adam_l2_0.001": _analysis(["pose2d"], [1, 2, 9]), "bodynet/voxels": _analysis(["voxels"], [0, 0, 0])}
    )
    assert list(frame["key"]) == ["study/adam_l2_0.001"]
    row = frame.iloc[0]
    assert row["layers_pruned_percent"] == "90 20 10"  # order 0 is the third layer listed
    assert row["pruned_percent"] == pytest.approx(40.0)
    assert row["parameters_removed_percent"] == pytest.approx(40.0) and row["macs_removed_percent"] == 50.0
    assert row["speedup"] == 2.0 and row["speedup_of_pruning"] == 1.5
    assert row["decay"] == "l2" and row["optimiser"] == "adam"
    assert table.build({"x": _analysis(["pose2d"], [0, 0, 0], "sgd", 0.0)}).iloc[0]["decay"] == "none"
    profile = table.layer_profile({"x": _analysis(["pose2d"], [1, 2, 9])})
    assert list(profile["removed_percent"]) == [90.0, 20.0, 10.0] and list(profile["position"]) == [0.0, 0.5, 1.0]


def test_a_bad_analysis_file_is_named(tmp_path):
    path = tmp_path / "analysis.json"
    path.write_text(json.dumps({"networks": []}))
    with pytest.raises(InputError, match="analysis.json: not a sparsity analysis"):
        table.read_analysis(path)
    path.write_text("{")
    with pytest.raises(InputError, match="analysis.json: not a readable sparsity analysis"):
        table.read_analysis(path)
